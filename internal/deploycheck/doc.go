// Package deploycheck holds no code, only tests: they check the deployment
// files (deploy/prometheus, deploy/grafana, docker-compose.yml, Dockerfile,
// .env.example) against the code. Every metric name an alert rule or the
// Grafana dashboard uses must be one the worker registers, every contract
// metric of DESIGN.md must be watched, and the compose file, Prometheus and
// Grafana provisioning must agree on service names, ports and paths.
//
// The tests read YAML with a small line-based reader instead of a YAML
// library: the files are simple, hand-written, and kept in the subset it
// understands (block maps and lists, flow lists, block scalars). When
// promtool is installed they also run promtool check rules / check config /
// test rules; `make check-deploy` does the same from the command line.
package deploycheck
