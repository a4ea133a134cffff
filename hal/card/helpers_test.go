package card

import "time"

func testTime(ns int64) time.Time    { return time.Unix(1700000000, ns) }
func timeDur(ns int64) time.Duration { return time.Duration(ns) }
