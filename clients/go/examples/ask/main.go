// Command ask asks a team of Iris a question, then streams the answer to a second one.
//
//	IRIS_ADDRESS=127.0.0.1:50051 IRIS_API_KEY=iris_sk_... go run ./examples/ask -team backend
//
// It exits with status 1 on any error, printing the error's reason and message.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/iris-dev/iris/clients/go/iris"
)

func main() {
	team := flag.String("team", "backend", "the team to ask")
	question := flag.String("question", "What database do we use?", "the question to Ask")
	streamed := flag.String("stream", "Explain auth", "the message whose answer is streamed")
	flag.Parse()
	if err := run(*team, *question, *streamed); err != nil {
		var e *iris.Error
		if errors.As(err, &e) {
			fmt.Fprintf(os.Stderr, "ask: %s (%s): %s\n", e.Reason, e.Code, e.Message)
		} else {
			fmt.Fprintln(os.Stderr, "ask:", err)
		}
		os.Exit(1)
	}
}

func run(team, question, streamed string) error {
	// Ctrl-C cancels the calls in flight.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	address := os.Getenv("IRIS_ADDRESS")
	if address == "" {
		address = "127.0.0.1:50051"
	}
	c, err := iris.Dial(ctx, address, iris.WithAPIKey(os.Getenv("IRIS_API_KEY")))
	if err != nil {
		return err
	}
	defer c.Close()

	a, err := c.Team(team).Ask(ctx, question)
	if err != nil {
		return err
	}
	fmt.Printf("%s answered in %v (message %s):\n%s\n\n", team, a.Duration, a.MessageID, a.Response)

	fmt.Printf("%s, streamed:\n", team)
	for ev, err := range c.Team(team).Stream(ctx, streamed) {
		if err != nil {
			return err
		}
		fmt.Print(ev.Text)
		if ev.Kind == "complete" {
			fmt.Printf("\n(%s)\n", ev.GetComplete().GetStatus())
		}
	}
	return nil
}
