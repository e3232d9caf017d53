package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ringleader-go/ringleader/admin"
)

// adminClient talks to one node's admin listener.
type adminClient struct {
	base  string // http://host:port
	token string
	http  *http.Client
}

// adminFlags registers --admin and --token on fs.
func adminFlags(fs *flag.FlagSet, env func(string) string) (addr, token *string) {
	addr = fs.String("admin", envOr(env, "RL_ADMIN_ADDR", "127.0.0.1:8080"), "a node's admin listener, host:port or URL (env RL_ADMIN_ADDR)")
	token = fs.String("token", env("RL_ADMIN_TOKEN"), "admin bearer token (env RL_ADMIN_TOKEN)")
	return addr, token
}

func newAdminClient(addr, token string) *adminClient {
	base := strings.TrimRight(addr, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &adminClient{base: base, token: token, http: &http.Client{Timeout: 90 * time.Second}}
}

// do sends one request and decodes a 2xx JSON answer into out; any other status is
// an error carrying the answer's message (admin.ErrorView).
func (c *adminClient) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("admin %s%s: %w", c.base, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e admin.ErrorView
		_ = json.Unmarshal(body, &e)
		if e.Message == "" {
			e.Message = strings.TrimSpace(string(body))
		}
		if resp.StatusCode == http.StatusUnauthorized {
			e.Message += " (set --token or RL_ADMIN_TOKEN)"
		}
		return fmt.Errorf("%s %s%s: %s: %s", method, c.base, path, resp.Status, e.Message)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s %s%s: answer is not the expected JSON: %w", method, c.base, path, err)
	}
	return nil
}

func parseAdmin(name string, args []string, env func(string) string, stderr io.Writer, nargs int, argsUsage string) (*adminClient, []string, error) {
	fs := flag.NewFlagSet("rl "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr, token := adminFlags(fs, env)
	positional, err := parseArgs(fs, args, nargs, nargs, strings.TrimSpace(fmt.Sprintf("rl %s [--admin host:port] [--token T] %s", name, argsUsage)))
	if err != nil {
		return nil, nil, err
	}
	return newAdminClient(*addr, *token), positional, nil
}

func cmdMembers(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	c, _, err := parseAdmin("members", args, env, stderr, 0, "")
	if err != nil {
		return err
	}
	var v admin.ClusterView
	if err := c.do(ctx, http.MethodGet, "/cluster", &v); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d members (as %s sees them, mode %s, ring %s)\n", len(v.Members), v.Node, v.Mode, v.Ring.Fingerprint)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tADMIN\tVERSION\tPARTITIONS")
	for _, m := range v.Members {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", m.ID, m.AdminAddr, m.Version, m.Partitions)
	}
	return tw.Flush()
}

func cmdRing(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	c, _, err := parseAdmin("ring", args, env, stderr, 0, "")
	if err != nil {
		return err
	}
	var v admin.ClusterView
	if err := c.do(ctx, http.MethodGet, "/cluster", &v); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ring %s: %d partitions over %d members\n", v.Ring.Fingerprint, v.Ring.Partitions, len(v.Members))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tPARTITIONS\tOWNS")
	for _, m := range v.Members {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", m.ID, m.Partitions, ranges(v.Ring.Owners, m.ID))
	}
	return tw.Flush()
}

// ranges lists the partitions owners gives to id as compact ranges: "0-3,7,9-10".
func ranges(owners []string, id string) string {
	var parts []string
	for i := 0; i < len(owners); i++ {
		if owners[i] != id {
			continue
		}
		j := i
		for j+1 < len(owners) && owners[j+1] == id {
			j++
		}
		if j == i {
			parts = append(parts, fmt.Sprint(i))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", i, j))
		}
		i = j
	}
	return strings.Join(parts, ",")
}

func cmdHandlers(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	c, _, err := parseAdmin("handlers", args, env, stderr, 0, "")
	if err != nil {
		return err
	}
	var v admin.HandlersView
	if err := c.do(ctx, http.MethodGet, "/handlers", &v); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "HANDLER\tPARTITION\tOWNER\tSTATE (on %s)\tPOSITION\tLAG\tERROR\n", v.Node)
	for _, p := range v.Partitions {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\t%s\n", p.Handler, p.Partition, p.RingOwner, p.State, p.Position, p.Lag, p.LastError)
	}
	return tw.Flush()
}

func cmdEvents(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rl events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr, token := adminFlags(fs, env)
	from := fs.Int64("from", 1, "first stream version")
	limit := fs.Int("limit", 0, "at most this many events (0: all)")
	asJSON := fs.Bool("json", false, "print one JSON object per event")
	positional, err := parseArgs(fs, args, 1, 1, "rl events [--admin host:port] [--token T] [--from N] [--limit N] [--json] <stream>")
	if err != nil {
		return err
	}
	c := newAdminClient(*addr, *token)
	stream := positional[0]
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if !*asJSON {
		fmt.Fprintln(tw, eventsHeader)
	}
	shown, next := 0, *from
	for next > 0 && (*limit == 0 || shown < *limit) {
		page := 1000
		if *limit > 0 && *limit-shown < page {
			page = *limit - shown
		}
		var v admin.StreamView
		if err := c.do(ctx, http.MethodGet, fmt.Sprintf("/streams/%s?from=%d&limit=%d", url.PathEscape(stream), next, page), &v); err != nil {
			return err
		}
		for _, e := range v.Events {
			if *asJSON {
				b, _ := json.Marshal(e)
				fmt.Fprintln(stdout, string(b))
			} else {
				printEvent(tw, e)
			}
		}
		shown += len(v.Events)
		next = v.Next
	}
	if !*asJSON {
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d events in %s\n", shown, stream)
	}
	return nil
}

// eventsHeader heads the event tables of `rl events` and `rl command`.
const eventsHeader = "VERSION\tPOSITION\tTYPE\tCREATED\tDATA"

// printEvent writes one row of an event table.
func printEvent(w io.Writer, e admin.StreamEvent) {
	fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%s\n", e.StreamVersion, e.GlobalPosition, e.Type, e.CreatedAt.Format(time.RFC3339), e.Data)
}

func cmdCommand(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rl command", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr, token := adminFlags(fs, env)
	asJSON := fs.Bool("json", false, "print the node's JSON")
	positional, err := parseArgs(fs, args, 2, 2, "rl command [--admin host:port] [--token T] [--json] <stream> <command-id>")
	if err != nil {
		return err
	}
	stream, command := positional[0], positional[1]
	var v admin.CommandView
	if err := newAdminClient(*addr, *token).do(ctx, http.MethodGet,
		fmt.Sprintf("/streams/%s/commands/%s", url.PathEscape(stream), url.PathEscape(command)), &v); err != nil {
		return err
	}
	if *asJSON {
		b, _ := json.MarshalIndent(v, "", "  ")
		fmt.Fprintln(stdout, string(b))
		return nil
	}
	switch {
	case len(v.Events) > 0:
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, eventsHeader)
		for _, e := range v.Events {
			printEvent(tw, e)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "command %s appended %d events to %s\n", command, len(v.Events), stream)
	case v.Outcome != nil && v.Outcome.Code != "":
		fmt.Fprintf(stdout, "command %s was %s at version %d of %s (%s): %s\n", command, v.Outcome.Code,
			v.Outcome.StreamVersion, stream, v.Outcome.CreatedAt.Format(time.RFC3339), v.Outcome.Message)
	case v.Outcome != nil:
		fmt.Fprintf(stdout, "command %s succeeded without events at version %d of %s (%s)\n", command,
			v.Outcome.StreamVersion, stream, v.Outcome.CreatedAt.Format(time.RFC3339))
	default:
		fmt.Fprintf(stdout, "no outcome of command %s in %s: it has not run there, or ran without that Command-Id\n", command, stream)
	}
	return nil
}
