package iris

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The reasons Iris puts in the google.rpc.ErrorInfo of a failed call, one per class of its error tree
// (iris_core/errors.py). They are compared with Error.Reason so that a caller branches on what went wrong
// rather than on a gRPC code, which several reasons share (NotFound is a team, a session or a message).
//
// This file is the only place the client spells them: a test of the server reads the quoted names here and
// compares them with its own list, so a reason added on one side and not the other fails the build.
const (
	// ReasonValidation: bad input; the request changed nothing (codes.InvalidArgument).
	ReasonValidation = "ValidationError"
	// ReasonUnauthorized: no usable credentials, e.g. a missing, wrong or revoked key (codes.Unauthenticated).
	ReasonUnauthorized = "UnauthorizedError"
	// ReasonForbidden: the key lacks the permission the call needs (codes.PermissionDenied).
	ReasonForbidden = "ForbiddenError"
	// ReasonNotFound: something the request names does not exist (codes.NotFound).
	ReasonNotFound = "NotFoundError"
	// ReasonTeamNotFound: the team is not in the server's configuration (codes.NotFound).
	ReasonTeamNotFound = "TeamNotFoundError"
	// ReasonSessionNotFound: the (calling team, team) pair has no session (codes.NotFound).
	ReasonSessionNotFound = "SessionNotFoundError"
	// ReasonMessageNotFound: no message or job has that id (codes.NotFound).
	ReasonMessageNotFound = "MessageNotFoundError"
	// ReasonTimeout: a bounded wait on the server ran out (codes.DeadlineExceeded); for Ask, the turn goes
	// on and Details["messageId"] names it, so its result can be fetched later with GetMessage.
	ReasonTimeout = "TimeoutError"
	// ReasonTooManyRequests: a rate limit or a full queue (codes.ResourceExhausted); Details["retryAfterMs"]
	// says when to try again.
	ReasonTooManyRequests = "TooManyRequestsError"
	// ReasonBudgetExceeded: a team's or API key's spending budget for the UTC day or month is used up
	// (codes.ResourceExhausted); Details name the budget, its limitUsd and spentUsd, and resetsAt (Unix ms).
	ReasonBudgetExceeded = "BudgetExceededError"
	// ReasonPreconditionFailed: the operation needs something the server's machine lacks
	// (codes.FailedPrecondition), or the message is in a state that does not allow it.
	ReasonPreconditionFailed = "PreconditionFailedError"
	// ReasonProcess: a team's Claude Code process failed to start or died (codes.Internal).
	ReasonProcess = "ProcessError"
	// ReasonConfiguration: the server's configuration is wrong (codes.Internal).
	ReasonConfiguration = "ConfigurationError"
	// ReasonProcessPoolLimit: every process slot is busy (codes.Unavailable); retry later.
	ReasonProcessPoolLimit = "ProcessPoolLimitError"
	// ReasonInternal: an unexpected failure on the server, hidden from the caller (codes.Internal).
	ReasonInternal = "InternalError"
)

// Error is what every failed call of this package returns (and what calls through Client.Raw return too),
// so that a caller needs one type to read a failure:
//
//	var e *iris.Error
//	if errors.As(err, &e) && e.Reason == iris.ReasonTeamNotFound { ... }
//
// The value form errors.As(err, &iris.Error{}) works as well (Error's Error method has a value receiver,
// and As copies the error into the value), for callers who only ask "is this an Iris error".
//
// Error keeps the gRPC status: status.Code(err) and status.FromError(err) still work on it. When the call
// failed because the caller's context ended, errors.Is(err, context.Canceled) (or
// context.DeadlineExceeded) holds as well; it does not when the client's own default deadline
// (WithCallTimeout, CallTimeout) ended the call while the caller's context lives, nor for Iris's
// TimeoutError: those are DeadlineExceeded by Code and Reason only.
type Error struct {
	// Code is the gRPC status code.
	Code codes.Code
	// Reason names the error: the ErrorInfo reason Iris sent (one of the Reason constants), or, when there
	// was none (a transport failure, a cancelled context, a proxy in between), the code's canonical name in
	// CamelCase followed by the word Error, e.g. UnavailableError, CancelledError, DeadlineExceededError.
	Reason string
	// Message is the server's human-readable message.
	Message string
	// Details is the ErrorInfo metadata: facts a program can use, such as messageId for an Ask that timed
	// out or retryAfterMs for a refusal by the rate limit. Never nil.
	Details map[string]string

	status   *status.Status // the status as received, kept for GRPCStatus
	cause    error          // the context's error when the caller's context ended the call
	fromIris bool           // the status carried an ErrorInfo: Iris's servicer sent it
}

// Error formats the error for logs; it has a value receiver so that Error values satisfy error too, which
// lets errors.As take a *Error target (see the type's documentation).
func (e Error) Error() string {
	return fmt.Sprintf("iris: %s (%s): %s", e.Reason, e.Code, e.Message)
}

// Unwrap returns the context's error when the caller's context ended the call, so that errors.Is(err,
// context.Canceled) holds; nil otherwise.
func (e *Error) Unwrap() error { return e.cause }

// As lets errors.As(err, &iris.Error{}) succeed by copying the error into the given value; targets of type
// **Error are handled by errors.As itself.
func (e *Error) As(target any) bool {
	if t, ok := target.(*Error); ok {
		*t = *e
		return true
	}
	return false
}

// GRPCStatus returns the gRPC status of the failed call, with its details, so that the status package
// (status.Code, status.FromError) reads an Error like the error it came from.
func (e *Error) GRPCStatus() *status.Status {
	if e.status != nil {
		return e.status
	}
	return status.New(e.Code, e.Message)
}

// asError turns any error of a call into an *Error (an *Error is returned as it is). ctx is the caller's
// context (not one the client derived from it for its default deadline): when it has ended and the status
// says so (Canceled or DeadlineExceeded, without an ErrorInfo, so not Iris's own TimeoutError), its error
// becomes the cause.
func asError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	st, ok := status.FromError(err)
	if !ok {
		// Not a status error (status.FromError made an Unknown status of it): keep it as the cause.
		e = &Error{Code: st.Code(), Message: st.Message(), Details: map[string]string{}, status: st, cause: err}
		e.Reason = reasonOfCode(e.Code)
		return e
	}
	e = &Error{Code: st.Code(), Message: st.Message(), Details: map[string]string{}, status: st}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			e.Reason = info.GetReason()
			e.fromIris = true
			for k, v := range info.GetMetadata() {
				e.Details[k] = v
			}
			break
		}
	}
	if e.Reason == "" {
		e.Reason = reasonOfCode(e.Code)
	}
	if ctx != nil && ctx.Err() != nil && !e.fromIris && (e.Code == codes.Canceled || e.Code == codes.DeadlineExceeded) {
		e.cause = ctx.Err()
	}
	return e
}

// contextError is the *Error for a context that ended while the client itself was waiting (Job.Wait's
// pause between polls, Dial).
func contextError(ctx context.Context) error {
	err := ctx.Err()
	code := codes.Canceled
	if errors.Is(err, context.DeadlineExceeded) {
		code = codes.DeadlineExceeded
	}
	return &Error{Code: code, Reason: reasonOfCode(code), Message: err.Error(), Details: map[string]string{}, cause: err}
}
