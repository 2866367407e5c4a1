package metrics

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewRegistry returns a registry holding the Go runtime collector (go_*),
// the process collector (process_*) and pagesend_build_info, a gauge of 1
// labelled with version and the Go version. An empty version is taken from
// the binary's build information, or "unknown". Register pagesend's
// collectors on it with [New], and later ones (asynq's queue collector) with
// its Register method.
func NewRegistry(version string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newBuildInfo(version),
	)
	return reg
}

func newBuildInfo(version string) prometheus.Collector {
	if version == "" {
		version = "unknown"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			version = bi.Main.Version
		}
	}
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pagesend_build_info",
		Help: "Always 1; the labels tell which pagesend version, built with which Go version, is running.",
		ConstLabels: prometheus.Labels{
			"version":   label(version),
			"goversion": runtime.Version(),
		},
	}, func() float64 { return 1 })
}
