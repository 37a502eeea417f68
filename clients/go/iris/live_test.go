package iris_test

// These tests run against a live Iris whose teams answer with the offline scripted model: "say TEXT"
// answers TEXT, "chunks a|b|c" streams a, b, c, "slow N MS" streams N chunks MS ms apart. IRIS_ADDRESS
// (host:port) and IRIS_API_KEY name it; the key must be allowed to call as other teams (admin or
// team:impersonate), because each test calls as a calling team of its own so that concurrent users of the
// same Iris do not queue behind each other's turns.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/iris-dev/iris/clients/go/iris"
)

// run makes this run's texts unique, so that a record or an event is recognized as this run's.
var run = func() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}()

// address is the live Iris's, or skips the test.
func address(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("IRIS_ADDRESS")
	if addr == "" {
		t.Skip("IRIS_ADDRESS is not set: these tests need a live Iris; `make test` runs them against one " +
			"(by hand: IRIS_ADDRESS=host:port IRIS_API_KEY=... go test -count=1 ./...)")
	}
	return addr
}

// dial returns a client of the live Iris calling as from, closed when the test ends.
func dial(t testing.TB, from string, opts ...iris.DialOption) *iris.Client {
	t.Helper()
	addr := address(t)
	opts = append([]iris.DialOption{iris.WithAPIKey(os.Getenv("IRIS_API_KEY")), iris.WithFromTeam(from)}, opts...)
	c, err := iris.Dial(context.Background(), addr, opts...)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// bounded is a context that ends the test's waits: no test hangs on a stuck Iris.
func bounded(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// cancelLater cancels a message when the test ends, so that a slow turn left running does not hold up the
// pair (errors are ignored: the message may have ended already).
func cancelLater(t testing.TB, c *iris.Client, id string) {
	t.Helper()
	t.Cleanup(func() {
		if id == "" {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = c.CancelMessage(ctx, id)
	})
}
