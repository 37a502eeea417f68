package iris

import (
	"context"
	"crypto/tls"
	"io"
	"iter"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/iris-dev/iris/clients/go/irisv1"
)

// DefaultCallTimeout bounds every unary call whose context has no earlier deadline, so that a call to an
// Iris that stopped answering fails instead of hanging; change it with WithCallTimeout.
const DefaultCallTimeout = 30 * time.Second

// APIKeyEnv is the environment variable Dial reads the API key from when WithAPIKey is not given, so that
// programs need not handle the key themselves.
const APIKeyEnv = "IRIS_API_KEY"

// Client is a connection to one Iris. It is safe for concurrent use; make one and share it, then Close it.
type Client struct {
	conn        *grpc.ClientConn
	raw         irisv1.IrisClient
	apiKey      string
	callTimeout time.Duration
	fromTeam    string
}

// DialOption configures Dial.
type DialOption func(*dialOptions)

type dialOptions struct {
	apiKey      string
	tls         *tls.Config
	callTimeout time.Duration
	fromTeam    string
	grpcOpts    []grpc.DialOption
}

// WithAPIKey sets the API key sent with every call (as "authorization: Bearer <key>"). Without it, or with
// an empty key, Dial uses the IRIS_API_KEY environment variable; when that is empty too, calls carry no key
// (for an Iris that does not require one). A key must be printable ASCII: Dial refuses one with another
// character (a line break, say) with Reason ReasonValidation, without showing the key.
func WithAPIKey(key string) DialOption {
	return func(o *dialOptions) { o.apiKey = key }
}

// WithTLS makes the connection use TLS with this configuration (nil: the system's roots). Without it the
// connection is plaintext, which suits an Iris on localhost or behind a TLS-terminating proxy.
func WithTLS(config *tls.Config) DialOption {
	return func(o *dialOptions) {
		if config == nil {
			config = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		o.tls = config
	}
}

// WithCallTimeout changes the deadline given to unary calls whose context has none earlier (default
// DefaultCallTimeout; it must be positive: every unary call has a deadline, and Dial refuses 0 or less).
// Ask has its own (see WithAskTimeout); streams have none.
func WithCallTimeout(d time.Duration) DialOption {
	return func(o *dialOptions) { o.callTimeout = d }
}

// WithFromTeam names the calling team sent with Ask, Stream, Execute and Status. Each (calling team, team)
// pair has its own Claude Code process and session, so a program can keep separate conversations by
// calling as different teams. The default, empty, calls as the API key's own name; naming another team
// needs a key with the team:impersonate permission.
func WithFromTeam(team string) DialOption {
	return func(o *dialOptions) { o.fromTeam = team }
}

// WithDialOption passes a gRPC dial option through, for what this package does not cover (keepalive,
// a custom resolver, more interceptors).
func WithDialOption(opt grpc.DialOption) DialOption {
	return func(o *dialOptions) { o.grpcOpts = append(o.grpcOpts, opt) }
}

// Dial makes a client for the Iris at target (host:port, or any gRPC target). It does not wait for a
// connection (gRPC connects on the first call, and reconnects by itself), so an Iris that is down shows as
// an Unavailable error on a call, not here. ctx is only checked: it is there so that Dial can start to
// wait later without a change of signature.
func Dial(ctx context.Context, target string, opts ...DialOption) (*Client, error) {
	if ctx.Err() != nil {
		return nil, contextError(ctx)
	}
	o := dialOptions{callTimeout: DefaultCallTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.callTimeout <= 0 {
		return nil, &Error{
			Code:    codes.InvalidArgument,
			Reason:  ReasonValidation,
			Message: "WithCallTimeout must be positive: every unary call has a deadline",
			Details: map[string]string{"field": "callTimeout"},
		}
	}
	key, from := o.apiKey, "WithAPIKey"
	if key == "" {
		key, from = os.Getenv(APIKeyEnv), APIKeyEnv
	}
	// A key read from a file keeps its line break; surrounding white space is never part of a key.
	key = strings.TrimSpace(key)
	if err := checkKey(key, from); err != nil {
		return nil, err
	}
	c := &Client{apiKey: key, callTimeout: o.callTimeout, fromTeam: o.fromTeam}
	creds := insecure.NewCredentials()
	if o.tls != nil {
		creds = credentials.NewTLS(o.tls)
	}
	grpcOpts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		// The key travels by interceptor, not by PerRPCCredentials: gRPC refuses credentials that require
		// transport security on a plaintext connection, and Iris on localhost is plaintext.
		grpc.WithChainUnaryInterceptor(c.unaryInterceptor),
		grpc.WithChainStreamInterceptor(c.streamInterceptor),
	}, o.grpcOpts...)
	conn, err := grpc.NewClient(target, grpcOpts...)
	if err != nil {
		return nil, asError(ctx, err)
	}
	c.conn = conn
	c.raw = irisv1.NewIrisClient(conn)
	return c, nil
}

// checkKey refuses, before any call, a key that cannot travel as a header value: gRPC sends only printable
// ASCII (space to ~), so a key with a line break or a comment copied with it, or a non-ASCII letter, would
// fail every call. The error names where the key came from, never the key.
func checkKey(key, from string) error {
	for i := 0; i < len(key); i++ {
		if b := key[i]; b < ' ' || b > '~' {
			return &Error{
				Code:   codes.InvalidArgument,
				Reason: ReasonValidation,
				Message: "the API key from " + from + " has a character that is not printable ASCII (a control " +
					"character such as a line break, or a non-ASCII one), which cannot be sent; the key is not shown",
				Details: map[string]string{"field": "apiKey"},
			}
		}
	}
	return nil
}

// Close closes the connection; calls in flight fail with codes.Canceled.
func (c *Client) Close() error { return c.conn.Close() }

// Raw returns the generated stub for every RPC this package has no method for (SessionReport, TeamWake,
// ListMessages, CreateApiKey, ...). Its calls carry the API key, get the default deadline when unary, and
// fail with *Error like the rest of this package.
func (c *Client) Raw() irisv1.IrisClient { return c.raw }

// ListTeams returns the teams configured on the server, in config order.
func (c *Client) ListTeams(ctx context.Context) ([]*irisv1.TeamInfo, error) {
	resp, err := c.raw.ListTeams(ctx, &irisv1.ListTeamsRequest{})
	if err != nil {
		return nil, asError(ctx, err)
	}
	return resp.GetTeams(), nil
}

// GetMessage looks a message up by its id (msg_...) or its job's id (job_...): where it stands and, once
// it has ended, its response. It is how a program picks up an Ask that timed out.
func (c *Client) GetMessage(ctx context.Context, id string) (*irisv1.MessageRecord, error) {
	resp, err := c.raw.GetMessage(ctx, &irisv1.GetMessageRequest{MessageId: id})
	if err != nil {
		return nil, asError(ctx, err)
	}
	return resp.GetMessage(), nil
}

// CancelMessage cancels a message (or a job) by id: a queued one never starts, a running one is
// interrupted. The record it returns may still say "processing" while the interrupt takes.
func (c *Client) CancelMessage(ctx context.Context, id string) (*irisv1.MessageRecord, error) {
	resp, err := c.raw.CancelMessage(ctx, &irisv1.CancelMessageRequest{MessageId: id})
	if err != nil {
		return nil, asError(ctx, err)
	}
	return resp.GetMessage(), nil
}

// Job returns a handle on an existing job by its id, e.g. one kept across a restart of this program, so
// that it can be waited for or cancelled.
func (c *Client) Job(jobID string) *Job {
	return &Job{ExecuteResponse: &irisv1.ExecuteResponse{JobId: jobID}, JobID: jobID, c: c}
}

// WatchEvents streams what happens inside Iris (turns, jobs, webhooks, processes, health) as it happens,
// filtered by req (nil: everything the key may see). It runs until ctx ends, the loop breaks, or the
// stream fails; reconnect with req.AfterId set to the last event's Id to miss none.
func (c *Client) WatchEvents(ctx context.Context, req *irisv1.WatchEventsRequest) iter.Seq2[*irisv1.WatchEventsResponse, error] {
	if req == nil {
		req = &irisv1.WatchEventsRequest{}
	}
	return func(yield func(*irisv1.WatchEventsResponse, error) bool) {
		receive(ctx, func(ctx context.Context) (grpc.ServerStreamingClient[irisv1.WatchEventsResponse], error) {
			return c.raw.WatchEvents(ctx, req)
		}, yield)
	}
}

// receive opens a server stream under a context of its own and yields its messages until the stream ends
// (io.EOF: nothing more is yielded), fails (the error is yielded) or yield returns false. The stream's
// context is cancelled on return, so a loop that breaks early closes the stream and leaves no goroutine.
func receive[T any](ctx context.Context, open func(context.Context) (grpc.ServerStreamingClient[T], error), yield func(*T, error) bool) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := open(ctx)
	if err != nil {
		yield(nil, asError(ctx, err))
		return
	}
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return
		}
		if err != nil {
			yield(nil, asError(ctx, err))
			return
		}
		if !yield(msg, nil) {
			return
		}
	}
}

// CallTimeout is a call option for Raw() calls that replaces the client's default deadline for that call
// (0 or less: none beyond the context's). The default caps even a context with a later deadline, so a call
// that waits longer on purpose, such as SendMessage with timeout 0, needs it:
//
//	c.Raw().SendMessage(ctx, req, iris.CallTimeout(10*time.Minute))
func CallTimeout(d time.Duration) grpc.CallOption { return callTimeout{d: d} }

// callTimeout carries CallTimeout to the unary interceptor (Ask uses it for its wait plus a margin).
type callTimeout struct {
	grpc.EmptyCallOption
	d time.Duration
}

// withKey adds the API key to the outgoing metadata unless the caller has set an authorization already.
func (c *Client) withKey(ctx context.Context) context.Context {
	if c.apiKey == "" {
		return ctx
	}
	if md, ok := metadata.FromOutgoingContext(ctx); ok && len(md.Get("authorization")) > 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.apiKey)
}

func (c *Client) unaryInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	// The caller's context decides whether the failure is the caller's: the client's own default deadline
	// firing is a DeadlineExceededError, but not context.DeadlineExceeded, since the caller's context lives.
	caller := ctx
	timeout := c.callTimeout
	for _, opt := range opts {
		if t, ok := opt.(callTimeout); ok {
			timeout = t.d
		}
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout) // keeps the context's deadline when it is earlier
		defer cancel()
	}
	ctx = c.withKey(ctx)
	return asError(caller, invoker(ctx, method, req, reply, cc, opts...))
}

func (c *Client) streamInterceptor(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	ctx = c.withKey(ctx)
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, asError(ctx, err)
	}
	return &errorStream{ClientStream: s, ctx: ctx}, nil
}

// errorStream makes a stream's failures *Error too (io.EOF, the normal end, stays as it is).
type errorStream struct {
	grpc.ClientStream
	ctx context.Context
}

func (s *errorStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err == nil || err == io.EOF {
		return err
	}
	return asError(s.ctx, err)
}
