package iris

import (
	"strings"

	"google.golang.org/grpc/codes"
)

// canonicalCodes are the gRPC codes' canonical names (grpc/doc/statuscodes.md). Go's codes.Code.String
// spells CANCELLED the American way ("Canceled"); the TypeScript and Python clients derive their fallback
// reasons from the canonical names, so this client does too.
var canonicalCodes = map[codes.Code]string{
	codes.OK:                 "OK",
	codes.Canceled:           "CANCELLED",
	codes.Unknown:            "UNKNOWN",
	codes.InvalidArgument:    "INVALID_ARGUMENT",
	codes.DeadlineExceeded:   "DEADLINE_EXCEEDED",
	codes.NotFound:           "NOT_FOUND",
	codes.AlreadyExists:      "ALREADY_EXISTS",
	codes.PermissionDenied:   "PERMISSION_DENIED",
	codes.ResourceExhausted:  "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION",
	codes.Aborted:            "ABORTED",
	codes.OutOfRange:         "OUT_OF_RANGE",
	codes.Unimplemented:      "UNIMPLEMENTED",
	codes.Internal:           "INTERNAL",
	codes.Unavailable:        "UNAVAILABLE",
	codes.DataLoss:           "DATA_LOSS",
	codes.Unauthenticated:    "UNAUTHENTICATED",
}

// reasonOfCode is Error.Reason for a failure without an ErrorInfo: the canonical name in CamelCase plus
// "Error" (DEADLINE_EXCEEDED gives DeadlineExceeded + Error). The server's own reasons are in errors.go.
func reasonOfCode(c codes.Code) string {
	name, ok := canonicalCodes[c]
	if !ok {
		name = "UNKNOWN"
	}
	var b strings.Builder
	for _, word := range strings.Split(name, "_") {
		b.WriteString(word[:1])
		b.WriteString(strings.ToLower(word[1:]))
	}
	b.WriteString("Error")
	return b.String()
}
