// Command papaya-loadgen is a tcpkali-like TCP load generator: it opens connections to
// host:port, sends a paced message stream on each, and prints a JSON summary (the
// loadgen.json schema of data/README.md) to stdout at the end. With --chat it speaks the
// chat protocol instead: the key first, then timestamped lines, and it measures each
// line's delivery latency on every connection. See --help.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"papaya/loadgen/internal/cli"
	"papaya/loadgen/internal/engine"
	"papaya/loadgen/internal/summary"
	"papaya/loadgen/internal/units"
)

const (
	exitOK       = 0
	exitNoneOpen = 1
	exitUsage    = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := cli.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "papaya-loadgen: %v\nRun papaya-loadgen --help for usage.\n", err)
		return exitUsage
	}
	if cfg.Help {
		fmt.Fprint(stdout, cli.Usage)
		return exitOK
	}
	if cfg.Version {
		fmt.Fprintf(stdout, "%s %s\n", summary.Tool, summary.Version)
		return exitOK
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "papaya-loadgen: warning: %s\n", w)
	}
	if limit, ok := openFileLimit(); ok && uint64(cfg.Connections)+32 > limit {
		fmt.Fprintf(stderr, "papaya-loadgen: warning: %d connections need more file descriptors "+
			"than the open-file limit %d allows (raise ulimit -n)\n", cfg.Connections, limit)
	}

	var jsonFile *os.File
	if cfg.JSONPath != "" {
		// Open now so that a bad path is a usage error before the run, not a lost result.
		if jsonFile, err = os.Create(cfg.JSONPath); err != nil {
			fmt.Fprintf(stderr, "papaya-loadgen: --json: %v\n", err)
			return exitUsage
		}
		defer jsonFile.Close()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal kills at once
	}()

	noDelay := !cfg.WriteCombine || cfg.Chat
	switch cfg.Nagle {
	case cli.NagleOn:
		noDelay = false
	case cli.NagleOff:
		noDelay = true
	}
	pacingText := "unpaced"
	if cfg.Chat {
		pacingText = fmt.Sprintf("chat, %g lines/s of %d bytes per connection", cfg.MessageRate,
			cfg.MessageSize)
	} else if t := cfg.PerConnectionTarget(); t > 0 {
		pacingText = units.FormatBandwidth(t) + " per connection"
	} else if cfg.Message == "" {
		pacingText = "no message"
	}
	combine := "on"
	if !cfg.WriteCombine {
		combine = "off"
	}
	fmt.Fprintf(stderr, "%s %s: %d connection(s) to %s for %gs, %s, write-combine %s\n",
		summary.Tool, summary.Version, cfg.Connections, cfg.Target, cfg.Duration.Seconds(),
		pacingText, combine)

	var chatParams *engine.Chat
	if cfg.Chat {
		chatParams = &engine.Chat{Key: cfg.Key, MessageSize: cfg.MessageSize,
			UsernamePrefix: cfg.UsernamePrefix, Drain: cfg.Drain}
	}
	s := engine.Run(ctx, engine.Params{
		Target:         cfg.Target,
		Connections:    cfg.Connections,
		Duration:       cfg.Duration,
		Message:        []byte(cfg.Message),
		FirstMessage:   []byte(cfg.FirstMessage),
		HasFirst:       cfg.HasFirst,
		BandwidthBps:   cfg.BandwidthBps,
		MessageRate:    cfg.MessageRate,
		ConnectRate:    cfg.ConnectRate,
		ConnectTimeout: cfg.ConnectTimeout,
		WriteCombine:   cfg.WriteCombine,
		WriteInterval:  cfg.WriteInterval,
		NoDelay:        noDelay,
		Chat:           chatParams,
		Log:            stderr,
	})

	out, err := s.JSON()
	if err != nil {
		fmt.Fprintf(stderr, "papaya-loadgen: encoding summary: %v\n", err)
		return exitNoneOpen
	}
	if _, err := stdout.Write(out); err != nil && !errors.Is(err, os.ErrClosed) {
		fmt.Fprintf(stderr, "papaya-loadgen: writing summary: %v\n", err)
	}
	if jsonFile != nil {
		if _, err := jsonFile.Write(out); err != nil {
			fmt.Fprintf(stderr, "papaya-loadgen: --json: %v\n", err)
		}
	}
	agg := "n/a"
	if s.AggregateBandwidthBps != nil {
		agg = fmt.Sprintf("%.3f Mbps", *s.AggregateBandwidthBps/1e6)
	}
	fmt.Fprintf(stderr, "Opened %d of %d connections; sent %d bytes in %.3fs (aggregate %s).\n",
		s.Connections.Opened, s.Connections.Requested, s.BytesSent, s.DurationS, agg)
	if s.Chat != nil {
		lat := "no latency samples"
		if l := s.LatencyS; l.Count > 0 {
			lat = fmt.Sprintf("latency p50 %.3fms, p99 %.3fms, max %.3fms", *l.P50*1e3, *l.P99*1e3,
				*l.Max*1e3)
		}
		fmt.Fprintf(stderr, "Chat: sent %d lines; received %d of %d expected; %s.\n",
			*s.LinesSent, *s.LinesReceived, *s.LinesExpected, lat)
	}
	if s.Connections.Opened == 0 {
		for _, e := range s.Errors {
			fmt.Fprintf(stderr, "papaya-loadgen: %s\n", e)
		}
		return exitNoneOpen
	}
	return exitOK
}
