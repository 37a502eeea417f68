// Package iris is the Go client of Iris, the gRPC service in front of Claude Code teams.
//
// It is a thin layer over the generated stub (package irisv1): the contract's messages cross the boundary
// as they are, and this package only adds Go names and types, the API key, deadlines, one error type, and
// Go 1.23 iterators for streams.
//
//	c, err := iris.Dial(ctx, "127.0.0.1:50051", iris.WithAPIKey(key)) // or IRIS_API_KEY
//	if err != nil { ... }
//	defer c.Close()
//
//	a, err := c.Team("backend").Ask(ctx, "What database do we use?")
//	if err != nil { ... }
//	fmt.Println(a.Response, a.MessageID, a.Duration)
//
//	for ev, err := range c.Team("backend").Stream(ctx, "Explain auth") {
//		if err != nil { ... }
//		fmt.Print(ev.Text)
//	}
//
//	job, err := c.Team("backend").Execute(ctx, "Run the audit", iris.WithCallback(url))
//	rec, err := job.Wait(ctx)
//
// Every failed call returns an *Error; its Reason names what went wrong (ReasonTeamNotFound,
// ReasonTimeout, ...):
//
//	var e *iris.Error
//	if errors.As(err, &e) && e.Reason == iris.ReasonTimeout {
//		rec, _ := c.GetMessage(ctx, e.Details["messageId"]) // the turn went on; pick it up later
//	}
//
// Nothing is retried automatically (a message sent twice runs twice); only Job.Wait polls, which is safe.
// For the RPCs without a method here, Client.Raw returns the generated stub, with the same key, deadlines
// and errors.
package iris
