package webhook

import (
	"testing"

	"go.uber.org/goleak"
)

// HTTP clients, test servers and the asynq server start goroutines: every
// test must leave none behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
