package agent

import (
	"fmt"
	"strings"
	"time"
)

// recordTimeLayout is PROTOCOL.md's time format, YYYYMMDDhhmmss.
const recordTimeLayout = "20060102150405"

// FormatTime formats t as PROTOCOL.md's local time YYYYMMDDhhmmss in loc.
func FormatTime(t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.Local
	}
	return t.In(loc).Format(recordTimeLayout)
}

// ParseTime reads a PROTOCOL.md time in loc: YYYYMMDDhhmmss, or the
// "YYYY-M-D H:m:s" form seen in public code, either optionally followed by
// Z (then it is UTC).
func ParseTime(s string, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.Local
	}
	in := strings.TrimSpace(s)
	if strings.HasSuffix(in, "Z") {
		in = strings.TrimSuffix(in, "Z")
		loc = time.UTC
	}
	if t, err := time.ParseInLocation(recordTimeLayout, in, loc); err == nil {
		return t, nil
	}
	var y, mo, d, h, mi, sec int
	var tail string
	n, _ := fmt.Sscanf(in, "%d-%d-%d %d:%d:%d%s", &y, &mo, &d, &h, &mi, &sec, &tail)
	if n == 6 && y >= 1970 && y <= 9999 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 &&
		h >= 0 && h <= 23 && mi >= 0 && mi <= 59 && sec >= 0 && sec <= 60 {
		t := time.Date(y, time.Month(mo), d, h, mi, sec, 0, loc)
		if t.Day() == d {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q is not YYYYMMDDhhmmss or YYYY-M-D H:m:s", s)
}
