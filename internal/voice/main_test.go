package voice

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind (clients and test servers must be
// closed).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
