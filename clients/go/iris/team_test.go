package iris_test

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/iris-dev/iris/clients/go/iris"
	"github.com/iris-dev/iris/clients/go/irisv1"
)

func TestAskAnswers(t *testing.T) {
	c := dial(t, "go-test-ask")
	ctx := bounded(t, 60*time.Second)
	want := "go ask " + run
	a, err := c.Team("backend").Ask(ctx, "say "+want, iris.WithAskContext("go-test", map[string]any{"pr": 42}))
	if err != nil {
		t.Fatalf("Ask: %v", err)
	}
	if a.Response != want {
		t.Errorf("Response = %q, want %q", a.Response, want)
	}
	if a.MessageID == "" || a.MessageID != a.GetMessageId() {
		t.Errorf("MessageID = %q (AskResponse.MessageId %q)", a.MessageID, a.GetMessageId())
	}
	if a.Duration <= 0 || a.Duration != time.Duration(a.AskResponse.Duration)*time.Millisecond {
		t.Errorf("Duration = %v (AskResponse.Duration %d ms)", a.Duration, a.AskResponse.Duration)
	}
	if a.Status != "completed" || a.FromTeam != "go-test-ask" || a.Team != "backend" {
		t.Errorf("Status, FromTeam, Team = %q, %q, %q", a.Status, a.FromTeam, a.Team)
	}
	// The record of the turn is there under the same id.
	rec, err := c.GetMessage(ctx, a.MessageID)
	if err != nil || rec.GetResponse() != want {
		t.Fatalf("GetMessage(%s) = %v, %v", a.MessageID, rec, err)
	}
	if ctx := rec.GetContext(); ctx.GetSource() != "go-test" || ctx.GetMetadata().GetFields()["pr"].GetNumberValue() != 42 {
		t.Errorf("the record's context = %v", ctx)
	}
}

func TestStreamYieldsStartChunksComplete(t *testing.T) {
	c := dial(t, "go-test-stream")
	ctx := bounded(t, 60*time.Second)
	chunks := []string{"alpha " + run + " ", "beta ", "gamma"}
	var kinds, texts []string
	var complete *irisv1.TellComplete
	for ev, err := range c.Team("backend").Stream(ctx, "chunks "+strings.Join(chunks, "|")) {
		if err != nil {
			t.Fatalf("Stream: %v", err)
		}
		kinds = append(kinds, ev.Kind)
		if ev.Kind == "chunk" {
			texts = append(texts, ev.Text)
			if ev.Text != ev.GetChunk().GetText() {
				t.Errorf("Text %q != chunk text %q", ev.Text, ev.GetChunk().GetText())
			}
		} else if ev.Text != "" {
			t.Errorf("%s event has Text %q", ev.Kind, ev.Text)
		}
		if ev.Kind == "complete" {
			complete = ev.GetComplete()
		}
	}
	if len(kinds) < 2 || kinds[0] != "start" || kinds[len(kinds)-1] != "complete" {
		t.Fatalf("kinds = %v, want start ... complete", kinds)
	}
	if !slices.Equal(texts, chunks) {
		t.Errorf("chunks = %q, want %q", texts, chunks)
	}
	if complete.GetStatus() != "completed" || complete.GetResponse() != strings.Join(texts, "") {
		t.Errorf("complete = %v; chunks make %q", complete, strings.Join(texts, ""))
	}
}

func TestStreamBreakLeavesNoGoroutine(t *testing.T) {
	c := dial(t, "go-test-break")
	ctx := bounded(t, 60*time.Second)
	team := c.Team("data-pipeline")
	// Connect first, so the connection's own goroutines are in the baseline.
	if _, err := team.Ask(ctx, "say warm "+run); err != nil {
		t.Fatalf("Ask: %v", err)
	}
	before := settledGoroutines()
	var messageID string
	for ev, err := range team.Stream(ctx, "slow 5 200") {
		if err != nil {
			t.Fatalf("Stream: %v", err)
		}
		if ev.Kind == "start" {
			messageID = ev.GetStart().GetMessageId()
		}
		if ev.Kind == "chunk" {
			break
		}
	}
	cancelLater(t, c, messageID)
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after breaking out of the stream, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
	// The client and Iris still answer (the broken stream's turn is cancelled first, so nothing waits).
	if _, err := c.CancelMessage(ctx, messageID); err != nil && !isReason(err, iris.ReasonPreconditionFailed) {
		t.Logf("CancelMessage: %v", err)
	}
	want := "after break " + run
	a, err := team.Ask(ctx, "say "+want)
	if err != nil || a.Response != want {
		t.Fatalf("Ask after break = %v, %v", a, err)
	}
}

// settledGoroutines is the goroutine count once it has stopped falling (goroutines of earlier tests end).
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for range 50 {
		time.Sleep(20 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m >= n {
			return m
		}
		n = m
	}
	return n
}

func TestStreamContextCancel(t *testing.T) {
	c := dial(t, "go-test-cancel")
	ctx, cancel := context.WithCancel(bounded(t, 60*time.Second))
	defer cancel()
	var messageID string
	var cancelled time.Time
	var got error
	for ev, err := range c.Team("data-pipeline").Stream(ctx, "slow 10 500") {
		if err != nil {
			got = err
			break
		}
		if ev.Kind == "start" {
			messageID = ev.GetStart().GetMessageId()
		}
		if ev.Kind == "chunk" && cancelled.IsZero() {
			cancel()
			cancelled = time.Now()
		}
	}
	cancelLater(t, c, messageID)
	if cancelled.IsZero() {
		t.Fatal("the stream ended before its first chunk")
	}
	if took := time.Since(cancelled); took > 2*time.Second {
		t.Errorf("the stream ended %v after the cancel", took)
	}
	if !errors.Is(got, context.Canceled) {
		t.Fatalf("error = %v, want one that is context.Canceled", got)
	}
	var e *iris.Error
	if !errors.As(got, &e) || e.Code != codes.Canceled || e.Reason != "Cancelled"+"Error" {
		t.Errorf("error = %#v, want *iris.Error Canceled", got)
	}
}

func TestAskTimeoutNamesTheMessage(t *testing.T) {
	c := dial(t, "go-test-timeout")
	ctx := bounded(t, 30*time.Second)
	start := time.Now()
	_, err := c.Team("backend").Ask(ctx, "slow 5 1000", iris.WithAskTimeout(1*time.Second))
	var e *iris.Error
	if !errors.As(err, &e) {
		t.Fatalf("Ask = %v, want *iris.Error", err)
	}
	cancelLater(t, c, e.Details["messageId"])
	if e.Reason != iris.ReasonTimeout || e.Code != codes.DeadlineExceeded || e.Details["messageId"] == "" {
		t.Errorf("error = %+v, want TimeoutError with a messageId", e)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the server's timeout must not look like the caller's context ending: %v", err)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("Ask took %v with a 1 s timeout", took)
	}
	// The turn goes on and can be found by that id.
	rec, err := c.GetMessage(ctx, e.Details["messageId"])
	if err != nil || rec.GetMessage() != "slow 5 1000" {
		t.Errorf("GetMessage = %v, %v", rec, err)
	}
}

func TestAskWithinTheCallersDeadlineNamesTheMessage(t *testing.T) {
	// The caller's context ends (2 s) long before the ask timeout (300 s by default) and the turn (5 s):
	// Ask tells Iris to give up first, so the TimeoutError naming the message arrives while ctx lives.
	c := dial(t, "go-test-askctx")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Team("backend").Ask(ctx, "slow 5 1000")
	var e *iris.Error
	if !errors.As(err, &e) {
		t.Fatalf("Ask = %v, want *iris.Error", err)
	}
	cancelLater(t, c, e.Details["messageId"])
	if e.Reason != iris.ReasonTimeout || e.Code != codes.DeadlineExceeded || !strings.HasPrefix(e.Details["messageId"], "msg_") {
		t.Errorf("error = %+v, want TimeoutError with a messageId", e)
	}
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Ask ended with the caller's context (%v): %v", ctx.Err(), err)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("Ask gave up after %v of the 2 s it had", took)
	}
}

func TestTeamsAndStatus(t *testing.T) {
	c := dial(t, "go-test-status")
	ctx := bounded(t, 30*time.Second)
	teams, err := c.ListTeams(ctx)
	if err != nil {
		t.Fatalf("ListTeams: %v", err)
	}
	var names []string
	for _, team := range teams {
		names = append(names, team.GetName())
	}
	for _, want := range []string{"backend", "data-pipeline", "alpha"} {
		if !slices.Contains(names, want) {
			t.Errorf("ListTeams = %v, missing %s", names, want)
		}
	}
	st, err := c.Team("alpha").Status(ctx)
	if err != nil || st.GetTeam() != "alpha" {
		t.Errorf("Status = %v, %v", st, err)
	}
	// The raw stub carries the key and the default deadline too.
	date, err := c.Raw().GetDate(ctx, &irisv1.GetDateRequest{})
	if err != nil || date == nil {
		t.Errorf("Raw().GetDate = %v, %v", date, err)
	}
}

func TestWatchEventsSeesATurn(t *testing.T) {
	c := dial(t, "go-test-watch")
	ctx := bounded(t, 60*time.Second)
	a, err := c.Team("alpha").Ask(ctx, "say watched "+run)
	if err != nil {
		t.Fatalf("Ask: %v", err)
	}
	// Events are kept, so a watch that resumes after id 1 replays this turn's end, then goes on live.
	req := &irisv1.WatchEventsRequest{Team: "alpha", Kinds: []string{"turn.completed"}, AfterId: 1}
	for ev, err := range c.WatchEvents(ctx, req) {
		if err != nil {
			t.Fatalf("WatchEvents: %v", err)
		}
		if ev.GetKind() != "turn.completed" || ev.GetTeam() != "alpha" {
			t.Fatalf("event %v passed the filter", ev)
		}
		if ev.GetMessageId() == a.MessageID {
			if ev.GetFromTeam() != "go-test-watch" || ev.GetStatus() != "completed" {
				t.Errorf("event = %v", ev)
			}
			return // breaking out closes the stream
		}
	}
	t.Fatal("the event stream ended without the turn")
}

func isReason(err error, reason string) bool {
	var e *iris.Error
	return errors.As(err, &e) && e.Reason == reason
}

func TestAskTimeoutMustBePositive(t *testing.T) {
	// No Iris is needed: Ask refuses before any call (the address has nothing listening).
	c, err := iris.Dial(context.Background(), "127.0.0.1:1", iris.WithAPIKey("unused"))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	for _, d := range []time.Duration{0, -time.Second} {
		_, err := c.Team("backend").Ask(context.Background(), "say never", iris.WithAskTimeout(d))
		var e *iris.Error
		if !errors.As(err, &e) || e.Reason != iris.ReasonValidation || e.Code != codes.InvalidArgument || e.Details["field"] != "timeout" {
			t.Errorf("Ask with WithAskTimeout(%v) = %#v, want ValidationError on field timeout", d, err)
		}
	}
}
