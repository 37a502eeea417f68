package iris

import (
	"testing"
	"time"
)

func TestWaitBefore(t *testing.T) {
	for _, c := range []struct{ left, want time.Duration }{
		{60 * time.Second, 59 * time.Second},                             // a margin of 1 s
		{10 * time.Second, 9 * time.Second},                              // 1 s is a tenth
		{2 * time.Second, 1800 * time.Millisecond},                       // a tenth of what is left
		{5 * time.Millisecond, 4500 * time.Microsecond},                  // still a tenth
		{time.Millisecond, time.Millisecond},                             // never below 1 ms ...
		{0, time.Millisecond},                                            // ... even when nothing is left
		{-time.Second, time.Millisecond},                                 // or the deadline has passed
		{time.Duration(1<<63 - 1), time.Duration(1<<63-1) - time.Second}, // no overflow
	} {
		if got := waitBefore(c.left); got != c.want {
			t.Errorf("waitBefore(%v) = %v, want %v", c.left, got, c.want)
		}
	}
	if ms := millis(waitBefore(0)); ms != 1 {
		t.Errorf("millis(waitBefore(0)) = %d, want 1 (0 would mean no limit)", ms)
	}
}
