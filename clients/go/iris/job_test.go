package iris_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/iris-dev/iris/clients/go/iris"
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
