// Command quickstart is the README's quick start as a program: ask, stream, then fire off a job with a
// callback and wait for it.
//
//	IRIS_ADDRESS=127.0.0.1:50051 IRIS_API_KEY=iris_sk_... IRIS_CALLBACK_URL=https://… go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/iris-dev/iris/clients/go/iris"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	address, key, url := os.Getenv("IRIS_ADDRESS"), os.Getenv("IRIS_API_KEY"), os.Getenv("IRIS_CALLBACK_URL")
	if address == "" {
		address = "127.0.0.1:50051"
	}

	c, err := iris.Dial(ctx, address, iris.WithAPIKey(key))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	a, err := c.Team("backend").Ask(ctx, "What database do we use?")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.Response)
	for ev, err := range c.Team("backend").Stream(ctx, "Explain auth") {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(ev.Text)
	}
	fmt.Println()
	job, err := c.Team("data-pipeline").Execute(ctx, "Generate the report", iris.WithCallback(url))
	if err != nil {
		log.Fatal(err)
	}
	record, err := job.Wait(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %s: %s\n", job.JobID, record.Status, record.Response)
}
