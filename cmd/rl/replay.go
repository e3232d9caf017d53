package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ringleader-go/ringleader/admin"
)

// cmdReplay resets a handler (a projection is rebuilt from the start of the store)
// and follows its partitions' lag until every one is 0, drawing a progress bar with
// the percentage done and an ETA.
func cmdReplay(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rl replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr, token := adminFlags(fs, env)
	interval := fs.Duration("interval", 500*time.Millisecond, "how often to poll /handlers")
	noWait := fs.Bool("no-wait", false, "reset and return without following the replay")
	positional, err := parseArgs(fs, args, 1, 1, "rl replay [--admin host:port] [--token T] [--interval 500ms] [--no-wait] <handler>")
	if err != nil {
		return err
	}
	name := positional[0]
	c := newAdminClient(*addr, *token)
	start := time.Now()
	if err := c.do(ctx, http.MethodPost, "/handlers/"+url.PathEscape(name)+"/reset", nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s reset; replaying\n", name)
	if *noWait {
		return nil
	}
	// On a terminal the bar redraws in place; otherwise (a pipe, a log) each
	// reading is a line of its own.
	eol := "\n"
	if f, ok := stdout.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			eol = "\r"
		}
	}
	var p progress
	ticker := time.NewTicker(*interval)
	defer ticker.Stop()
	for {
		var v admin.HandlersView
		if err := c.do(ctx, http.MethodGet, "/handlers", &v); err != nil {
			return err
		}
		lag, parts, stopped := int64(0), 0, []string{}
		for _, row := range v.Partitions {
			if row.Handler != name {
				continue
			}
			parts++
			lag += row.Lag
			if row.State == "stopped" || row.LastError != "" {
				stopped = append(stopped, fmt.Sprintf("#%d %s %s", row.Partition, row.State, row.LastError))
			}
		}
		if parts == 0 {
			return fmt.Errorf("handler %q has no partitions in /handlers", name)
		}
		p.observe(lag, time.Since(start))
		fmt.Fprint(stdout, p.line()+eol)
		if lag == 0 {
			if eol == "\r" {
				fmt.Fprintln(stdout)
			}
			fmt.Fprintf(stdout, "%s replayed in %s\n", name, time.Since(start).Round(time.Millisecond))
			return nil
		}
		if len(stopped) > 0 {
			fmt.Fprintln(stdout)
			return fmt.Errorf("handler %q has failing partitions: %s", name, strings.Join(stopped, "; "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

// progress turns successive lag readings into a percentage and an ETA. Lag is
// summed over the handler's partitions (each counts the events after its
// checkpoint), so the first reading after the reset is the whole job.
type progress struct {
	total   int64         // the largest lag seen: the work to do
	lag     int64         // the latest reading
	elapsed time.Duration // since the reset was sent
}

func (p *progress) observe(lag int64, elapsed time.Duration) {
	if lag > p.total {
		p.total = lag
	}
	p.lag, p.elapsed = lag, elapsed
}

// fraction is the share done, 0..1.
func (p *progress) fraction() float64 {
	if p.total == 0 {
		return 1
	}
	return float64(p.total-p.lag) / float64(p.total)
}

// eta extrapolates the time left from the pace so far; ok is false before any
// progress.
func (p *progress) eta() (time.Duration, bool) {
	f := p.fraction()
	if f <= 0 || p.elapsed <= 0 {
		return 0, false
	}
	return time.Duration(float64(p.elapsed) * (1 - f) / f), true
}

const barWidth = 30

// line draws "[#########.....]  37.5%  lag 62500  ETA 4s".
func (p *progress) line() string {
	f := p.fraction()
	filled := int(f * barWidth)
	bar := strings.Repeat("#", filled) + strings.Repeat(".", barWidth-filled)
	eta := "ETA ?"
	if d, ok := p.eta(); ok {
		eta = "ETA " + d.Round(100*time.Millisecond).String()
	}
	return fmt.Sprintf("[%s] %5.1f%%  lag %d events  %s", bar, 100*f, p.lag, eta)
}
