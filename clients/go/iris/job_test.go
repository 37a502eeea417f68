package iris_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/iris-dev/iris/clients/go/iris"
	"github.com/iris-dev/iris/clients/go/irisv1"
)

// delivery is one webhook POST as the test's receiver saw it.
type delivery struct {
	header http.Header
	body   map[string]any
	err    error
}

func TestExecuteCallbackAndWait(t *testing.T) {
	c := dial(t, "go-test-job")
	ctx := bounded(t, 60*time.Second)
	deliveries := make(chan delivery, 4)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := delivery{header: r.Header.Clone()}
		raw, err := io.ReadAll(r.Body)
		if err == nil {
			err = json.Unmarshal(raw, &d.body)
		}
		d.err = err
		if r.Method != http.MethodPost {
			d.err = &json.UnsupportedValueError{Str: "method " + r.Method}
		}
		deliveries <- d
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	want := "job done " + run
	job, err := c.Team("backend").Execute(ctx, "say "+want, iris.WithCallback(receiver.URL+"/hook"),
		iris.WithCallbackHeaders(map[string]string{"X-Test": run}), iris.WithPriority("high"))
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if !strings.HasPrefix(job.JobID, "job_") || !strings.HasPrefix(job.MessageID, "msg_") || job.JobID != job.GetJobId() {
		t.Fatalf("job = %+v", job)
	}
	rec, err := job.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if rec.GetStatus() != "completed" || rec.GetResponse() != want || rec.GetJobId() != job.JobID {
		t.Errorf("Wait = %v", rec)
	}

	select {
	case d := <-deliveries:
		if d.err != nil {
			t.Fatalf("delivery: %v", d.err)
		}
		if d.body["jobId"] != job.JobID || d.body["messageId"] != job.MessageID || d.body["status"] != "completed" {
			t.Errorf("delivery body = %v", d.body)
		}
		for _, h := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
			if d.header.Get(h) == "" {
				t.Errorf("delivery lacks %s: %v", h, d.header)
			}
		}
		if !strings.HasPrefix(d.header.Get("webhook-signature"), "v1,") || d.header.Get("X-Test") != run {
			t.Errorf("delivery headers = %v", d.header)
		}
	case <-ctx.Done():
		t.Fatal("no webhook delivery within the test's time")
	}
}

func TestJobCancel(t *testing.T) {
	c := dial(t, "go-test-jobcancel")
	ctx := bounded(t, 60*time.Second)
	idem := fmt.Sprintf("go-cancel-%s-%d", run, time.Now().UnixNano()) // unique under -count too
	job, err := c.Team("data-pipeline").Execute(ctx, "slow 20 500", iris.WithIdempotencyKey(idem))
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	cancelLater(t, c, job.JobID)
	// Let it start, so that the cancel interrupts a running turn rather than a queued one.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		rec, err := job.Get(ctx)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if rec.GetStatus() != "queued" {
			break
		}
	}
	start := time.Now()
	if _, err := job.Cancel(ctx); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	rec, err := job.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if rec.GetStatus() != "cancelled" {
		t.Errorf("Wait after Cancel = %v", rec)
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("the job took %v to end after Cancel (it would run 10 s)", took)
	}
	// The same idempotency key gives the same job, and a handle by id reads it too.
	again, err := c.Team("data-pipeline").Execute(ctx, "slow 20 500", iris.WithIdempotencyKey(idem))
	if err != nil || again.JobID != job.JobID {
		t.Errorf("Execute again = %v, %v; want job %s", again, err, job.JobID)
	}
	if rec, err := c.Job(job.JobID).Get(ctx); err != nil || rec.GetStatus() != "cancelled" {
		t.Errorf("Job(id).Get = %v, %v", rec, err)
	}
}

func TestWaitPollsThroughTransientFailures(t *testing.T) {
	// The first polls of the job fail as a restart of Iris, or an Iris that hangs, shows to the client,
	// each without an ErrorInfo and while the caller's context lives; Wait polls on to the completed record.
	var polls atomic.Int32
	flaky := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if method == irisv1.Iris_GetMessage_FullMethodName {
			switch polls.Add(1) {
			case 1: // Iris's graceful stop cancels the calls in flight
				return status.Error(codes.Canceled, "Cancelled")
			case 2: // Iris hangs: the poll outlasts the client's default deadline (200 ms here)
				<-ctx.Done()
			case 3: // Iris is down
				return status.Error(codes.Unavailable, "connection refused")
			}
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	c := dial(t, "go-test-jobflaky", iris.WithCallTimeout(200*time.Millisecond),
		iris.WithDialOption(grpc.WithChainUnaryInterceptor(flaky)))
	ctx := bounded(t, 30*time.Second)
	job, err := c.Team("data-pipeline").Execute(ctx, "slow 4 250")
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	cancelLater(t, c, job.JobID)
	rec, err := job.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v (after %d polls)", err, polls.Load())
	}
	if rec.GetStatus() != "completed" || rec.GetJobId() != job.JobID {
		t.Errorf("Wait = %v", rec)
	}
	if n := polls.Load(); n < 4 {
		t.Errorf("%d polls, want the 3 failures and at least one more", n)
	}
}

func TestWaitEndsOnIrisErrorsAndClose(t *testing.T) {
	c := dial(t, "go-test-jobend")
	ctx := bounded(t, 30*time.Second)
	// A failure from Iris (with its ErrorInfo) ends the wait at once.
	start := time.Now()
	_, err := c.Job("job_no-such-job-" + run).Wait(ctx)
	if !isReason(err, iris.ReasonMessageNotFound) {
		t.Errorf("Wait on an unknown job = %v, want MessageNotFoundError", err)
	}
	// So does closing the client (its calls fail as Canceled), though the caller's context lives.
	closed := dial(t, "go-test-jobend")
	_ = closed.Close()
	_, err = closed.Job("job_no-such-job-" + run).Wait(ctx)
	var e *iris.Error
	if !errors.As(err, &e) || e.Code != codes.Canceled || errors.Is(err, context.Canceled) {
		t.Errorf("Wait on a closed client = %#v, want CancelledError", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the waits took %v; they should end at once", took)
	}
}
