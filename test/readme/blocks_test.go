package readme

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// A shell block of the documentation says how it is tested with a marker on the line
// before its fence:
//
//	<!-- test: KIND -->
//	<!-- test: KIND; skip "LINE PREFIX" (reason); … -->
//
// KIND is one of the kinds below; a skip names the lines (by how they start) that
// cannot run here and why. Blocks inside the walkthrough section need no marker:
// TestYourOwnDomainWalkthrough runs them.
const (
	// kindTodoCluster blocks run while the walkthrough's to-do cluster is up.
	kindTodoCluster = "todo-cluster"
	// kindBankNode blocks run line by line against a node of cmd/node (the bank),
	// with rl, node and the nats CLI on the PATH and RL_NATS, RL_PREFIX and
	// RL_ADMIN_ADDR pointing at it.
	kindBankNode = "bank-node"
	// kindDemo blocks are run from the repository's root with a cluster of their own
	// (make demo), stopped with Ctrl-C once it says it keeps running.
	kindDemo = "demo"
	// kindSkip blocks cannot run on a test machine at all (they name real hosts).
	kindSkip = "skip"
)

// block is one ```sh block of a Markdown file.
type block struct {
	file          string // relative to the repository root
	line          int    // of the opening fence
	kind          string
	skips         map[string]string // line prefix → why it is not run
	text          string
	inWalkthrough bool
}

// where names the block for messages.
func (b block) where() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

// commandLines returns the block's command lines: continuation lines joined,
// comment-only lines (shown output) dropped.
func (b block) commandLines() []string {
	var lines []string
	var cur strings.Builder
	for _, l := range strings.Split(b.text, "\n") {
		if cur.Len() == 0 && (strings.TrimSpace(l) == "" || strings.HasPrefix(strings.TrimSpace(l), "#")) {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\"))
			continue
		}
		cur.WriteString(l)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	return lines
}

// skipped says why line is not run, or "".
func (b block) skipped(line string) string {
	for prefix, why := range b.skips {
		if strings.HasPrefix(line, prefix) {
			return why
		}
	}
	return ""
}

var (
	shellFence  = regexp.MustCompile("(?s)```sh\n(.*?)```")
	testMarker  = regexp.MustCompile(`<!-- test: (.*?) -->\s*$`)
	skipPattern = regexp.MustCompile(`^skip "([^"]+)" \(([^)]+)\)$`)
)

// shellBlocks reads every ```sh block of README.md and docs/*.md, with its marker.
// A block without a valid marker outside the walkthrough is an error.
func shellBlocks(root string) ([]block, []error) {
	files := []string{"README.md"}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	for _, d := range docs {
		files = append(files, filepath.Join("docs", filepath.Base(d)))
	}
	var blocks []block
	var errs []error
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		text := string(data)
		start := strings.Index(text, "<!-- walkthrough:start -->")
		end := strings.Index(text, "<!-- walkthrough:end -->")
		for _, m := range shellFence.FindAllStringSubmatchIndex(text, -1) {
			b := block{file: f, line: strings.Count(text[:m[0]], "\n") + 1, text: text[m[2]:m[3]], skips: map[string]string{}}
			b.inWalkthrough = start >= 0 && m[0] > start && m[0] < end
			if b.inWalkthrough {
				blocks = append(blocks, b)
				continue
			}
			marker := testMarker.FindStringSubmatch(strings.TrimRight(text[:m[0]], "\n"))
			if marker == nil {
				errs = append(errs, fmt.Errorf("%s: a shell block without a <!-- test: … --> marker: the README test cannot run it and does not know why", b.where()))
				continue
			}
			parts := strings.Split(marker[1], ";")
			b.kind = strings.TrimSpace(parts[0])
			if strings.HasPrefix(b.kind, kindSkip+" ") {
				b.kind = kindSkip // "skip (reason)": the whole block
			}
			switch b.kind {
			case kindTodoCluster, kindBankNode, kindDemo, kindSkip:
			default:
				errs = append(errs, fmt.Errorf("%s: unknown test kind %q", b.where(), b.kind))
				continue
			}
			for _, p := range parts[1:] {
				s := skipPattern.FindStringSubmatch(strings.TrimSpace(p))
				if s == nil {
					errs = append(errs, fmt.Errorf("%s: %q is not skip \"LINE PREFIX\" (reason)", b.where(), strings.TrimSpace(p)))
					continue
				}
				b.skips[s[1]] = s[2]
			}
			blocks = append(blocks, b)
		}
	}
	return blocks, errs
}

// ofKind returns the blocks of kind.
func ofKind(blocks []block, kind string) []block {
	var out []block
	for _, b := range blocks {
		if b.kind == kind && !b.inWalkthrough {
			out = append(out, b)
		}
	}
	return out
}
