package testwait

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTB records Fatalf instead of stopping the test.
type fakeTB struct {
	testing.TB
	failed atomic.Value
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed.Store(format)
	panic("fatal") // stop like t.Fatalf would
}

func TestUntil(t *testing.T) {
	n := 0
	Until(t, time.Second, "three polls", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Errorf("polled %d times", n)
	}

	f := &fakeTB{}
	func() {
		defer func() { recover() }()
		Until(f, 30*time.Millisecond, "never", func() bool { return false })
	}()
	if msg, _ := f.failed.Load().(string); !strings.HasPrefix(msg, "timed out after") {
		t.Errorf("a condition that never holds did not fail the test (got %q)", msg)
	}
}
