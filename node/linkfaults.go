package node

import (
	"strings"

	"github.com/clusterd/clusterd/topology"
	"github.com/prometheus/client_golang/prometheus"
)

// linkMismatches names the active link faults no retry repairs (another
// node with this name, cluster credentials or TLS that differ): a node with
// one is not ready. "" when there is none. A route to nothing is reported
// (cluster_status, the log, the metric) but leaves the node ready: the
// other end may just be down for a while.
func (n *Node) linkMismatches() string {
	if n.Servers == nil {
		return ""
	}
	var msgs []string
	for _, f := range n.Servers.Faults.Active() {
		if f.Fatal {
			msgs = append(msgs, f.Message)
		}
	}
	if len(msgs) == 0 {
		return ""
	}
	return "link problem: " + strings.Join(msgs, "; ")
}

// linkFaultCollector exports clusterd_link_problems{kind}: active link
// faults by kind (0 for kinds without one, so alerts can be written on it).
type linkFaultCollector struct {
	faults *topology.LinkFaults
	desc   *prometheus.Desc
}

func (c linkFaultCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c linkFaultCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{topology.FaultDuplicateName: 0, topology.FaultCredentials: 0, topology.FaultTLS: 0, topology.FaultClusterName: 0, topology.FaultRefused: 0, topology.FaultUnreachable: 0}
	for _, f := range c.faults.Active() {
		counts[f.Kind]++
	}
	for kind, v := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(v), kind)
	}
}

func (n *Node) registerLinkFaultMetrics() {
	_ = n.Metrics.Registry.Register(linkFaultCollector{
		faults: n.Servers.Faults,
		desc: prometheus.NewDesc("clusterd_link_problems",
			"Active link problems between this node and others, by kind (duplicate_name, credentials, tls, cluster_name, refused, unreachable); see cluster_status link_problems.",
			[]string{"kind"}, nil),
	})
}
