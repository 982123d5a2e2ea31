package extauthz

import "time"

// SetSlowStage sets the time from which a traced stage is a span of its own, and returns
// what puts it back.
func SetSlowStage(d time.Duration) func() {
	prev := slowStage
	slowStage = d
	return func() { slowStage = prev }
}
