package protocol

import (
	"fmt"
	"strings"
	"time"
)

// TimeLayout is the layout of every time field on the wire: local
// wall-clock time YYYYMMDDhhmmss, e.g. "20190823123435".
const TimeLayout = "20060102150405"

// FormatTime formats t in the location loc (nil means t's own location) as
// TimeLayout.
func FormatTime(t time.Time, loc *time.Location) string {
	if loc != nil {
		t = t.In(loc)
	}
	return t.Format(TimeLayout)
}

// ParseTime parses a time field as local time in loc (nil means
// time.Local). It accepts TimeLayout and the forms seen in public code for
// this protocol: "YYYY-M-D H:m:s" (one or two digits per field) and either
// form followed by "Z", which means UTC.
func ParseTime(s string, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.Local
	}
	v := strings.TrimSpace(s)
	if rest, ok := strings.CutSuffix(v, "Z"); ok {
		v, loc = rest, time.UTC
	}
	for _, layout := range []string{TimeLayout, "2006-1-2 15:4:5"} {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time as YYYYMMDDhhmmss", s)
}
