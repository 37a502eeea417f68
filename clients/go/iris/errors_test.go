package iris_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/iris-dev/iris/clients/go/iris"
	"github.com/iris-dev/iris/clients/go/irisv1"
)

func TestUnknownTeamIsTeamNotFound(t *testing.T) {
	c := dial(t, "go-test-errors")
	ctx := bounded(t, 30*time.Second)
	_, err := c.Team("no-such-team-"+run).Ask(ctx, "say hello")
	var e *iris.Error
	if !errors.As(err, &e) {
		t.Fatalf("Ask = %v (%T), want *iris.Error", err, err)
	}
	if e.Reason != iris.ReasonTeamNotFound || e.Code != codes.NotFound || e.Message == "" {
		t.Errorf("error = %+v, want TeamNotFoundError / NotFound", e)
	}
	// The value form of errors.As, and the status package, read it too.
	var v iris.Error
	if !errors.As(err, &v) || v.Reason != iris.ReasonTeamNotFound {
		t.Errorf("errors.As(err, &iris.Error{}) gave %+v", v)
	}
	if status.Code(err) != codes.NotFound {
		t.Errorf("status.Code = %v", status.Code(err))
	}
	// A stream fails the same way.
	for _, err := range c.Team("no-such-team-"+run).Stream(ctx, "say hello") {
		if !isReason(err, iris.ReasonTeamNotFound) {
			t.Errorf("Stream error = %v, want TeamNotFoundError", err)
		}
	}
}

func TestBadKeyIsUnauthorized(t *testing.T) {
	c := dial(t, "", iris.WithAPIKey("iris_sk_live_not-a-key-"+run))
	_, err := c.ListTeams(bounded(t, 30*time.Second))
	var e *iris.Error
	if !errors.As(err, &e) || e.Reason != iris.ReasonUnauthorized || e.Code != codes.Unauthenticated {
		t.Fatalf("ListTeams with a bad key = %v, want UnauthorizedError / Unauthenticated", err)
	}
}

func TestAPIKeyFromEnvironment(t *testing.T) {
	addr := address(t)
	ctx := bounded(t, 30*time.Second)
	dialEnv := func(opts ...iris.DialOption) *iris.Client {
		c, err := iris.Dial(ctx, addr, opts...) // no key, or an empty one
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	t.Setenv("IRIS_API_KEY", os.Getenv("IRIS_API_KEY"))
	if _, err := dialEnv().ListTeams(ctx); err != nil {
		t.Fatalf("ListTeams with the key from IRIS_API_KEY: %v", err)
	}
	t.Setenv("IRIS_API_KEY", "iris_sk_live_not-a-key-"+run)
	if _, err := dialEnv().ListTeams(ctx); !isReason(err, iris.ReasonUnauthorized) {
		t.Fatalf("ListTeams with a bad IRIS_API_KEY = %v, want UnauthorizedError", err)
	}
	if _, err := dialEnv(iris.WithAPIKey("")).ListTeams(ctx); !isReason(err, iris.ReasonUnauthorized) {
		t.Fatalf("WithAPIKey(\"\") did not fall back to IRIS_API_KEY: %v", err)
	}
}

func TestContextErrors(t *testing.T) {
	c := dial(t, "go-test-errors")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Team("backend").Ask(ctx, "say never")
	var e *iris.Error
	if !errors.Is(err, context.Canceled) || !errors.As(err, &e) || e.Code != codes.Canceled || e.Reason != "Cancelled"+"Error" {
		t.Errorf("Ask on a cancelled context = %#v", err)
	}
	// The client's default deadline applies to unary calls whose context has none; it is not the caller's
	// context ending, so errors.Is(err, context.DeadlineExceeded) does not hold.
	short := dial(t, "go-test-errors", iris.WithCallTimeout(time.Microsecond))
	_, err = short.ListTeams(context.Background())
	if errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &e) || e.Code != codes.DeadlineExceeded || e.Reason != "DeadlineExceeded"+"Error" {
		t.Errorf("ListTeams past the call timeout = %#v", err)
	}
}

func TestClientDeadlineIsNotTheCallers(t *testing.T) {
	// A raw call that outlasts the client's default deadline (the turn takes 1.5 s, the deadline is 300 ms,
	// the caller's context has none): DeadlineExceededError, but not context.DeadlineExceeded.
	c := dial(t, "go-test-calldeadline", iris.WithCallTimeout(300*time.Millisecond))
	send := func(ctx context.Context) (time.Duration, error) {
		start := time.Now()
		_, err := c.Raw().SendMessage(ctx, &irisv1.SendMessageRequest{ToTeam: "data-pipeline", Message: "slow 3 500", FromTeam: "go-test-calldeadline"})
		return time.Since(start), err
	}
	took, err := send(context.Background())
	var e *iris.Error
	if !errors.As(err, &e) || e.Code != codes.DeadlineExceeded || e.Reason != "DeadlineExceeded"+"Error" {
		t.Fatalf("SendMessage past the client's deadline = %#v", err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		t.Errorf("the client's own deadline looks like the caller's context ending: %v", err)
	}
	if took > 5*time.Second {
		t.Errorf("SendMessage took %v with a 300 ms call timeout", took)
	}
	// The caller's own deadline, earlier than the client's, still shows as context.DeadlineExceeded.
	c = dial(t, "go-test-calldeadline")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := send(ctx); !errors.Is(err, context.DeadlineExceeded) || !isReason(err, "DeadlineExceeded"+"Error") {
		t.Errorf("SendMessage past the caller's deadline = %#v", err)
	}
}

func TestDialRefusesAKeyThatCannotBeSent(t *testing.T) {
	// No Iris is needed: Dial refuses the key before any call, and its error does not show the key.
	secret := "iris_sk_live_secret-" + run
	for _, tc := range []struct{ key, env, from string }{
		{key: secret + "\n# comment", from: "WithAPIKey"},
		{key: secret + "\x00", from: "WithAPIKey"},
		{key: "secr\u00e9t-" + secret, from: "WithAPIKey"},
		{env: secret + "\r\nsecond line", from: "IRIS_API_KEY"},
	} {
		t.Setenv("IRIS_API_KEY", tc.env)
		c, err := iris.Dial(context.Background(), "127.0.0.1:1", iris.WithAPIKey(tc.key))
		if c != nil {
			_ = c.Close()
		}
		var e *iris.Error
		if !errors.As(err, &e) || e.Reason != iris.ReasonValidation || e.Code != codes.InvalidArgument || e.Details["field"] != "apiKey" {
			t.Errorf("Dial with the key %q (from %s) = %#v, want ValidationError on field apiKey", tc.key+tc.env, tc.from, err)
			continue
		}
		if !strings.Contains(e.Message, tc.from) {
			t.Errorf("the error does not say where the key came from (%s): %v", tc.from, err)
		}
		for _, shown := range []string{err.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e)} {
			if strings.Contains(shown, "secret") || strings.Contains(shown, run) {
				t.Errorf("the error shows the key: %s", shown)
			}
		}
	}
	// A printable key (spaces and punctuation too) is accepted, and so is one with the line break of the
	// file it was read from (white space around a key is never part of it).
	for _, key := range []string{"iris_sk_live_A-z 0~9", "iris_sk_live_from_a_file\n"} {
		c, err := iris.Dial(context.Background(), "127.0.0.1:1", iris.WithAPIKey(key))
		if err != nil {
			t.Fatalf("Dial with the key %q: %v", key, err)
		}
		_ = c.Close()
	}
}

func TestDialRefusesACallTimeoutThatIsNoDeadline(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		_, err := iris.Dial(context.Background(), "127.0.0.1:1", iris.WithCallTimeout(d))
		var e *iris.Error
		if !errors.As(err, &e) || e.Reason != iris.ReasonValidation || e.Details["field"] != "callTimeout" {
			t.Errorf("Dial with WithCallTimeout(%v) = %v, want ValidationError on field callTimeout", d, err)
		}
	}
}

func TestDialChecksContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := iris.Dial(ctx, "127.0.0.1:1"); !errors.Is(err, context.Canceled) {
		t.Errorf("Dial on a cancelled context = %v", err)
	}
}

func TestRawCallTimeout(t *testing.T) {
	// A client whose default deadline is too short for any call; CallTimeout lifts it for one raw call.
	c := dial(t, "go-test-errors", iris.WithCallTimeout(time.Microsecond))
	ctx := bounded(t, 30*time.Second)
	if _, err := c.Raw().GetDate(ctx, &irisv1.GetDateRequest{}); !isReason(err, "DeadlineExceeded"+"Error") {
		t.Errorf("Raw().GetDate past the default deadline = %v", err)
	}
	if _, err := c.Raw().GetDate(ctx, &irisv1.GetDateRequest{}, iris.CallTimeout(10*time.Second)); err != nil {
		t.Errorf("Raw().GetDate with CallTimeout: %v", err)
	}
}
