package iris_test

// The cost of this package over the generated stub, on a warm Ask ("say hi" to alpha, whose process is
// already up). Run against a live Iris with a key whose rate limit allows the calls (the default, 100 per
// 15 minutes, does not):
//
//	IRIS_ADDRESS=... IRIS_API_KEY=... go test -run '^$' -bench Ask -benchtime 200x -count 3 ./iris
//
// Besides ns/op (a mean), each benchmark reports the median (p50-ms) and p90-ms of its calls. Every Ask
// lengthens the pair's session, and a longer session answers more slowly, so each benchmark starts from a
// fresh session (SessionReboot, which needs team:clear); otherwise whichever runs later looks slower.

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/iris-dev/iris/clients/go/iris"
	"github.com/iris-dev/iris/clients/go/irisv1"
)

const benchFrom = "go-bench"

// benchTeam is the team the benchmarks ask: IRIS_BENCH_TEAM (make bench names its own), else alpha.
func benchTeam() string {
	if team := os.Getenv("IRIS_BENCH_TEAM"); team != "" {
		return team
	}
	return "alpha"
}

func BenchmarkAskClient(b *testing.B) {
	c := dial(b, benchFrom)
	reboot(b, c)
	team := c.Team(benchTeam())
	ask := func() error {
		_, err := team.Ask(context.Background(), "say hi")
		return err
	}
	measure(b, ask)
}

func BenchmarkAskRaw(b *testing.B) {
	reboot(b, dial(b, benchFrom))
	addr := address(b)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	stub := irisv1.NewIrisClient(conn)
	// What Ask sends: the same request, the key as metadata, a deadline of the ask timeout plus 10 s.
	timeout := iris.DefaultAskTimeout.Milliseconds()
	req := &irisv1.AskRequest{Team: benchTeam(), Question: "say hi", FromTeam: benchFrom, Timeout: &timeout}
	key := os.Getenv("IRIS_API_KEY")
	ask := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), iris.DefaultAskTimeout+10*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
		_, err := stub.Ask(ctx, req)
		return err
	}
	measure(b, ask)
}

// reboot gives the benchmarks' pair a fresh, empty session.
func reboot(b *testing.B, c *iris.Client) {
	_, err := c.Raw().SessionReboot(context.Background(), &irisv1.SessionRebootRequest{ToTeam: benchTeam(), FromTeam: benchFrom})
	if err != nil {
		b.Fatalf("SessionReboot: %v", err)
	}
}

// measure runs ask b.N times after one untimed call (which wakes the pair's process and connects), and
// reports the median and 90th percentile of the calls.
func measure(b *testing.B, ask func() error) {
	if err := ask(); err != nil {
		b.Fatalf("warm-up Ask: %v", err)
	}
	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := ask(); err != nil {
			b.Fatalf("Ask: %v", err)
		}
		took = append(took, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(took)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(took[len(took)/2]), "p50-ms")
	b.ReportMetric(ms(took[len(took)*9/10]), "p90-ms")
}

// BenchmarkAskPaired alternates the client's Ask and the raw stub's Ask on one pair (the order flipping
// each round), so drift on a shared machine hits both alike, and reports each one's median: what the
// client adds is client-p50-ms minus raw-p50-ms. `make bench` runs this one.
func BenchmarkAskPaired(b *testing.B) {
	c := dial(b, benchFrom)
	reboot(b, c)
	team := c.Team(benchTeam())
	timeout := iris.DefaultAskTimeout.Milliseconds()
	req := &irisv1.AskRequest{Team: benchTeam(), Question: "say hi", FromTeam: benchFrom, Timeout: &timeout}
	key := os.Getenv("IRIS_API_KEY")
	conn, err := grpc.NewClient(address(b), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	raw := irisv1.NewIrisClient(conn)
	viaClient := func() error {
		_, err := team.Ask(context.Background(), "say hi")
		return err
	}
	viaRaw := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), iris.DefaultAskTimeout+10*time.Second)
		defer cancel()
		_, err := raw.Ask(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key), req)
		return err
	}
	for range 10 {
		if viaClient() != nil || viaRaw() != nil {
			b.Fatal("warm-up Ask failed")
		}
	}
	client := make([]time.Duration, 0, b.N)
	plain := make([]time.Duration, 0, b.N)
	timed := func(ask func() error, into *[]time.Duration) {
		start := time.Now()
		if err := ask(); err != nil {
			b.Fatalf("Ask: %v", err)
		}
		*into = append(*into, time.Since(start))
	}
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			timed(viaClient, &client)
			timed(viaRaw, &plain)
		} else {
			timed(viaRaw, &plain)
			timed(viaClient, &client)
		}
	}
	b.StopTimer()
	median := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2]) / float64(time.Millisecond)
	}
	b.ReportMetric(median(client), "client-p50-ms")
	b.ReportMetric(median(plain), "raw-p50-ms")
}
