package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ringleader-go/ringleader/config"
)

// knownEnv lists the RL_* variables the node reads, from its own usage text.
func knownEnv(t *testing.T) map[string]bool {
	t.Helper()
	var usage bytes.Buffer
	_, _ = config.Load([]string{"-h"}, func(string) string { return "" }, &usage)
	known := map[string]bool{"RL_CONFIG": true}
	for _, m := range regexp.MustCompile(`env (RL_[A-Z_]+)`).FindAllStringSubmatch(usage.String(), -1) {
		known[m[1]] = true
	}
	if len(known) < 20 {
		t.Fatalf("found only %d RL_ variables in the usage text", len(known))
	}
	return known
}

// checkEnvNames fails for every RL_* name in names the node does not know.
func checkEnvNames(t *testing.T, file string, names []string) {
	t.Helper()
	known := knownEnv(t)
	for _, n := range names {
		if strings.HasPrefix(n, "RL_") && !known[n] {
			t.Errorf("%s sets %s, which the node does not read", file, n)
		}
	}
}

func TestComposeFile(t *testing.T) {
	raw, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Environment map[string]string `yaml:"environment"`
			Ports       []string          `yaml:"ports"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	var names []string
	for _, svc := range []string{"postgres", "nats", "node1", "node2", "node3"} {
		if _, ok := doc.Services[svc]; !ok {
			t.Errorf("no service %s", svc)
		}
	}
	for _, id := range []string{"node1", "node2", "node3"} {
		env := doc.Services[id].Environment
		if env["RL_NODE_ID"] != id {
			t.Errorf("%s: RL_NODE_ID %q", id, env["RL_NODE_ID"])
		}
		for _, k := range []string{"RL_DSN", "RL_NATS", "RL_SEEDS", "RL_GOSSIP_KEY", "RL_ADMIN_TOKEN", "RL_ADMIN_ADDR"} {
			if env[k] == "" {
				t.Errorf("%s: %s is not set", id, k)
			}
		}
		for k := range env {
			names = append(names, k)
		}
	}
	checkEnvNames(t, "docker-compose.yml", names)
}

func TestKubernetesManifests(t *testing.T) {
	f, err := os.Open("k8s/statefulset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type envVar struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	}
	type object struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Spec struct {
			ClusterIP   string `yaml:"clusterIP"`
			ServiceName string `yaml:"serviceName"`
			Replicas    int    `yaml:"replicas"`
			Template    struct {
				Spec struct {
					Containers []struct {
						Env            []envVar `yaml:"env"`
						ReadinessProbe struct {
							HTTPGet struct {
								Path string `yaml:"path"`
							} `yaml:"httpGet"`
						} `yaml:"readinessProbe"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	dec := yaml.NewDecoder(f)
	byKind := map[string][]object{}
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("k8s/statefulset.yaml: %v", err)
		}
		if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
			t.Errorf("object without apiVersion, kind or name: %+v", o)
		}
		byKind[o.Kind] = append(byKind[o.Kind], o)
	}
	sts := byKind["StatefulSet"]
	if len(sts) != 1 {
		t.Fatalf("want one StatefulSet, got %d", len(sts))
	}
	s := sts[0]
	var headless bool
	for _, svc := range byKind["Service"] {
		if svc.Metadata.Name == s.Spec.ServiceName && svc.Spec.ClusterIP == "None" {
			headless = true
		}
	}
	if !headless {
		t.Errorf("the StatefulSet's serviceName %q is not a headless Service", s.Spec.ServiceName)
	}
	c := s.Spec.Template.Spec.Containers[0]
	if c.ReadinessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("readiness probe %q, want /healthz (open without the admin token)", c.ReadinessProbe.HTTPGet.Path)
	}
	var names []string
	env := map[string]string{}
	for _, e := range c.Env {
		names = append(names, e.Name)
		env[e.Name] = e.Value
	}
	checkEnvNames(t, "k8s/statefulset.yaml", names)
	for i := range s.Spec.Replicas {
		seed := s.Metadata.Name + "-" + string(rune('0'+i)) + "." + s.Spec.ServiceName + ":7946"
		if !slices.Contains(strings.Split(env["RL_SEEDS"], ","), seed) {
			t.Errorf("RL_SEEDS %q lacks %s", env["RL_SEEDS"], seed)
		}
	}
}

func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/node", "./cmd/rl", "FROM gcr.io/distroless/static", "USER nonroot", `ENTRYPOINT ["/usr/local/bin/node"]`} {
		if !strings.Contains(s, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if n := strings.Count(s, "\nFROM "); n != 2 {
		t.Errorf("want a two-stage build, got %d FROM lines", n)
	}
}
