package iris

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"

	"github.com/iris-dev/iris/clients/go/irisv1"
)

// Job is a task queued by Execute: the contract's ExecuteResponse, with its ids under Go names and the
// calls that follow a job up.
type Job struct {
	*irisv1.ExecuteResponse
	// JobID is the job's id (job_...), which GetMessage and CancelMessage take.
	JobID string
	// MessageID is the id of the message the job sends (msg_...).
	MessageID string

	c *Client
}

// ExecuteOption configures one Execute.
type ExecuteOption func(*irisv1.ExecuteRequest)

// WithCallback makes Iris POST the job's result to url when it ends, signed the Standard Webhooks way
// (webhook-id, webhook-timestamp and webhook-signature headers), so that nothing has to poll.
func WithCallback(url string) ExecuteOption {
	return func(r *irisv1.ExecuteRequest) {
		if r.Callback == nil {
			r.Callback = &irisv1.WebhookCallback{}
		}
		r.Callback.Url = url
	}
}

// WithCallbackHeaders adds headers to every delivery of the callback, e.g. the receiver's own token; it
// needs WithCallback.
func WithCallbackHeaders(headers map[string]string) ExecuteOption {
	return func(r *irisv1.ExecuteRequest) {
		if r.Callback == nil {
			r.Callback = &irisv1.WebhookCallback{}
		}
		if r.Callback.Headers == nil {
			r.Callback.Headers = map[string]string{}
		}
		for k, v := range headers {
			r.Callback.Headers[k] = v
		}
	}
}

// WithPriority sets the job's place in the queue: "low", "normal" (the default) or "high".
func WithPriority(priority string) ExecuteOption {
	return func(r *irisv1.ExecuteRequest) { r.Priority = priority }
}

// WithIdempotencyKey makes a retried Execute safe: the same key from the same API key within 24 hours
// returns the first job and starts nothing.
func WithIdempotencyKey(key string) ExecuteOption {
	return func(r *irisv1.ExecuteRequest) { r.IdempotencyKey = key }
}

// WithJobTimeout bounds how long the job may run once started (default: the server's turn timeout); past
// it the job is cancelled.
func WithJobTimeout(d time.Duration) ExecuteOption {
	return func(r *irisv1.ExecuteRequest) {
		ms := millis(d)
		r.Timeout = &ms
	}
}

// Execute queues a task as a durable job and returns at once: the job survives a restart of Iris, and its
// result goes to the callback (WithCallback) or is read with Job.Get and Job.Wait.
func (t *Team) Execute(ctx context.Context, task string, opts ...ExecuteOption) (*Job, error) {
	req := &irisv1.ExecuteRequest{Team: t.name, Task: task, FromTeam: t.c.fromTeam}
	for _, opt := range opts {
		opt(req)
	}
	resp, err := t.c.raw.Execute(ctx, req)
	if err != nil {
		return nil, asError(ctx, err)
	}
	return &Job{ExecuteResponse: resp, JobID: resp.GetJobId(), MessageID: resp.GetMessageId(), c: t.c}, nil
}

func (j *Job) id() string {
	if j.JobID != "" {
		return j.JobID
	}
	return j.MessageID
}

// Get reads the job's message as it stands now: its status, progress, and once ended its response.
func (j *Job) Get(ctx context.Context) (*irisv1.MessageRecord, error) {
	return j.c.GetMessage(ctx, j.id())
}

// Cancel cancels the job: a queued one never starts, a running one is interrupted. The returned record may
// still say "processing" for a moment; Wait returns once it says "cancelled".
func (j *Job) Cancel(ctx context.Context) (*irisv1.MessageRecord, error) {
	return j.c.CancelMessage(ctx, j.id())
}

// Wait polls the job (after 100 ms, then twice as long each time, at most 2 s apart) until it has ended,
// and returns its record: its Status is completed, failed or cancelled, which is not an error of Wait.
//
// Jobs survive a restart of Iris, so while ctx lives Wait polls again after a failure that did not come
// from Iris's servicer: codes.Unavailable (Iris unreachable), and codes.Canceled or
// codes.DeadlineExceeded without an ErrorInfo (Reason CancelledError or DeadlineExceededError: Iris's
// graceful stop cancels the calls in flight; a poll outlasted the client's default deadline because Iris
// was hung or overloaded). Any failure from Iris (an ErrorInfo, such as ReasonMessageNotFound), the end of
// ctx, or Close ends it with an *Error. Bound it with ctx.
func (j *Job) Wait(ctx context.Context) (*irisv1.MessageRecord, error) {
	const first, most = 100 * time.Millisecond, 2 * time.Second
	delay := first
	for {
		rec, err := j.Get(ctx)
		if err == nil {
			switch rec.GetStatus() {
			case "completed", "failed", "cancelled":
				return rec, nil
			}
		} else if ctx.Err() != nil || !j.c.transient(err) {
			return nil, err
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, contextError(ctx)
		case <-timer.C:
		}
		delay = min(delay*2, most)
	}
}

// transient reports whether a failed poll is worth repeating: the call did not reach Iris's servicer
// (Unavailable), or ended under the client without an answer from Iris (Canceled or DeadlineExceeded
// carrying no ErrorInfo), and the client has not been closed (calls on a closed client fail as Canceled).
// The caller checks that its context lives.
func (c *Client) transient(err error) bool {
	var e *Error
	if !errors.As(err, &e) || c.conn.GetState() == connectivity.Shutdown {
		return false
	}
	switch e.Code {
	case codes.Unavailable:
		return true
	case codes.Canceled, codes.DeadlineExceeded:
		return !e.fromIris
	}
	return false
}
