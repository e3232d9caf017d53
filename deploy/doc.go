// Package deploy holds Ringleader's deployment files — a Dockerfile (static
// binary), a docker-compose file for 3 nodes with PostgreSQL and NATS, a Kubernetes
// StatefulSet example, a NATS permission set and least-privilege PostgreSQL roles —
// and the tests that lint them: the YAML parses and names only settings the node
// knows, and the roles SQL is applied to the real test database and checked.
//
// Docker and Kubernetes are not available where the tests run, so the compose file
// and the manifests are checked for shape, not run.
package deploy
