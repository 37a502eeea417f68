package iris

import (
	"context"
	"iter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/iris-dev/iris/clients/go/irisv1"
)

// DefaultAskTimeout is how long Ask waits for the whole answer unless WithAskTimeout says otherwise. A
// team's turn can take minutes (it reads code, runs tools), hence longer than DefaultCallTimeout.
const DefaultAskTimeout = 300 * time.Second

// askGrace is added to the ask timeout for the call's gRPC deadline, so that the server's own timeout
// (TimeoutError, with the message id to fetch the result later) comes first rather than a bare
// DEADLINE_EXCEEDED from the client.
const askGrace = 10 * time.Second

// Team is a handle on one team of the Iris, made by Client.Team; it holds nothing but the team's name.
type Team struct {
	c    *Client
	name string
}

// Team returns a handle on the named team. It checks nothing: an unknown team shows as an *Error with
// Reason ReasonTeamNotFound on the first call.
func (c *Client) Team(name string) *Team { return &Team{c: c, name: name} }

// Name is the team's name.
func (t *Team) Name() string { return t.name }

// Answer is a team's whole answer to Ask: the contract's AskResponse, with the id and duration under Go
// names and types.
type Answer struct {
	*irisv1.AskResponse
	// MessageID is the id of the recorded turn (AskResponse.MessageId), for GetMessage.
	MessageID string
	// Duration is the time from acceptance to the end of the turn (AskResponse.Duration, in milliseconds,
	// which this field shadows).
	Duration time.Duration
}

// AskOption configures one Ask.
type AskOption func(*askOptions)

type askOptions struct {
	timeout time.Duration
	context *irisv1.AskContext
	err     error
}

// WithAskTimeout sets how long Ask waits for the whole answer (default DefaultAskTimeout). Past it Ask fails
// with Reason ReasonTimeout and Details["messageId"], while the turn goes on; the call's gRPC deadline is
// this plus 10 s so that the server's answer arrives first. d must be positive: every Ask has a bound, so
// with d <= 0 Ask fails at once, without a call, with Reason ReasonValidation (codes.InvalidArgument,
// Details["field"] "timeout"). A ctx with an earlier deadline shortens the wait (see Ask).
func WithAskTimeout(d time.Duration) AskOption {
	return func(o *askOptions) { o.timeout = d }
}

// WithAskContext says where a question comes from (e.g. "github-webhook", with a pull request's number);
// Iris keeps it with the message. metadata's values must be JSON-like (see structpb.NewStruct).
func WithAskContext(source string, metadata map[string]any) AskOption {
	return func(o *askOptions) {
		o.context = &irisv1.AskContext{Source: source}
		if metadata != nil {
			s, err := structpb.NewStruct(metadata)
			if err != nil {
				o.err = &Error{Code: codes.InvalidArgument, Reason: ReasonValidation, Message: "ask context metadata: " + err.Error(), Details: map[string]string{"field": "context.metadata"}}
				return
			}
			o.context.Metadata = s
		}
	}
}

// Ask asks the team a question and waits for the whole answer. The answer's Status says how the turn
// ended (completed, error or cancelled); a failed call (an unknown team, a timeout, a refused key) is an
// *Error.
//
// When ctx has a deadline sooner than the ask timeout, Iris is told to wait only until shortly before it
// (1 s before, or a tenth of the time left when that is under 10 s), so that the TimeoutError naming the
// message (Details["messageId"]) arrives while ctx lives, rather than a bare DeadlineExceededError that
// leaves the running turn without an id.
func (t *Team) Ask(ctx context.Context, question string, opts ...AskOption) (*Answer, error) {
	o := askOptions{timeout: DefaultAskTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.err != nil {
		return nil, o.err
	}
	if o.timeout <= 0 {
		// Iris reads a timeout of 0 as "until the turn ends"; the client never asks without a bound.
		return nil, &Error{Code: codes.InvalidArgument, Reason: ReasonValidation, Message: "ask timeout must be positive, got " + o.timeout.String(), Details: map[string]string{"field": "timeout"}}
	}
	wait := o.timeout
	if end, ok := ctx.Deadline(); ok {
		wait = min(wait, waitBefore(time.Until(end)))
	}
	req := &irisv1.AskRequest{Team: t.name, Question: question, FromTeam: t.c.fromTeam, Context: o.context}
	ms := millis(wait)
	req.Timeout = &ms
	deadline := wait + askGrace // ctx's deadline, when earlier, stays the call's
	if deadline < wait {        // overflow: a deadline all the same
		deadline = wait
	}
	resp, err := t.c.raw.Ask(ctx, req, callTimeout{d: deadline})
	if err != nil {
		return nil, asError(ctx, err)
	}
	return &Answer{
		AskResponse: resp,
		MessageID:   resp.GetMessageId(),
		Duration:    time.Duration(resp.GetDuration()) * time.Millisecond,
	}, nil
}

// Event is one event of a streamed answer: the contract's TellResponse, with its kind named and a chunk's
// text at hand.
type Event struct {
	*irisv1.TellResponse
	// Kind names the event: "start", "chunk", "tool_use", "permission_request" or "complete" ("" for an
	// event kind newer than this client).
	Kind string
	// Text is a chunk's text ("" for the other kinds); the chunks' texts in order make the answer.
	Text string
}

func newEvent(r *irisv1.TellResponse) *Event {
	ev := &Event{TellResponse: r}
	switch e := r.GetEvent().(type) {
	case *irisv1.TellResponse_Start:
		ev.Kind = "start"
	case *irisv1.TellResponse_Chunk:
		ev.Kind = "chunk"
		ev.Text = e.Chunk.GetText()
	case *irisv1.TellResponse_ToolUse:
		ev.Kind = "tool_use"
	case *irisv1.TellResponse_PermissionRequest:
		ev.Kind = "permission_request"
	case *irisv1.TellResponse_Complete:
		ev.Kind = "complete"
	}
	return ev
}

// Stream sends the team a message and yields its answer as it is produced: a start event, the chunks in
// order (with tool uses and permission requests between them), and a complete event with the whole answer
// and how the turn ended. A failure is yielded once as the error, and ends the sequence.
//
// The stream has no deadline of its own: ctx bounds it. Breaking out of the loop closes the stream (the
// turn itself goes on in Iris; CancelMessage with the start event's message id stops it).
func (t *Team) Stream(ctx context.Context, message string) iter.Seq2[*Event, error] {
	req := &irisv1.TellRequest{ToTeam: t.name, Message: message, FromTeam: t.c.fromTeam}
	return func(yield func(*Event, error) bool) {
		receive(ctx, func(ctx context.Context) (grpc.ServerStreamingClient[irisv1.TellResponse], error) {
			return t.c.raw.Tell(ctx, req)
		}, func(r *irisv1.TellResponse, err error) bool {
			if err != nil {
				return yield(nil, err)
			}
			return yield(newEvent(r), nil)
		})
	}
}

// Status reports whether the calling team's pair with this team is awake, and its queue.
func (t *Team) Status(ctx context.Context) (*irisv1.TeamStatusResponse, error) {
	name := t.name
	resp, err := t.c.raw.TeamStatus(ctx, &irisv1.TeamStatusRequest{FromTeam: t.c.fromTeam, Team: &name})
	if err != nil {
		return nil, asError(ctx, err)
	}
	return resp, nil
}

// waitBefore is how long Iris may wait for an answer when the caller's context ends in left: left less a
// margin for the TimeoutError to travel back (1 s, or a tenth of left when left is under 10 s), and at
// least 1 ms (0 would mean "no limit" to Iris).
func waitBefore(left time.Duration) time.Duration {
	margin := min(time.Second, left/10)
	return max(left-margin, time.Millisecond)
}

// millis is d in whole milliseconds for the contract's timeouts, rounded up so that a positive duration
// never becomes 0, which means "no limit".
func millis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}
