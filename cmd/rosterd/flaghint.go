package main

import (
	"flag"
	"fmt"
	"time"
)

// hintedValue wraps one of the flag package's own values (durations and
// counts) so that a value it cannot parse says what it wants: the flag
// package alone answers `invalid value "5" for flag -tick: parse error`.
type hintedValue struct {
	flag.Getter
	want string
}

func (h hintedValue) Set(s string) error {
	if err := h.Getter.Set(s); err != nil {
		return fmt.Errorf("%v: want %s", err, h.want)
	}
	return nil
}

// hintValue gives fl a hinting value when its type has a hint (parsing
// only: -h keeps the plain values, whose types it names). Booleans
// keep their own value: flag needs IsBoolFlag to take a bare -auth.
func hintValue(fl *flag.Flag) {
	g, ok := fl.Value.(flag.Getter)
	if !ok {
		return
	}
	var want string
	switch g.Get().(type) {
	case time.Duration:
		want = "a duration such as 500ms, 2s or 1m30s"
	case int, int64, uint, uint64:
		want = "a whole number"
	default:
		return
	}
	fl.Value = hintedValue{Getter: g, want: want}
}
