package store

import "github.com/prometheus/client_golang/prometheus"

// Collector exports the notification log's Stats as counters; the server
// registers it beside its own metrics:
// openmpns_log_records_total, openmpns_log_syncs_total and
// openmpns_log_notifications_total by outcome (written, or skipped:
// acknowledged before its commit).
func (e *Embedded) Collector() prometheus.Collector { return logCollector{e.log} }

type logCollector struct{ l *Log }

var (
	logRecordsDesc = prometheus.NewDesc("openmpns_log_records_total",
		"Records written to the notification log (group commits, removals, compactions).", nil, nil)
	logSyncsDesc = prometheus.NewDesc("openmpns_log_syncs_total",
		"fdatasyncs of the notification log.", nil, nil)
	logNotesDesc = prometheus.NewDesc("openmpns_log_notifications_total",
		"Notifications that reached a commit of the notification log, by outcome: written, or skipped (acknowledged by the device before the commit, never written).",
		[]string{"outcome"}, nil)
)

func (c logCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- logRecordsDesc
	ch <- logSyncsDesc
	ch <- logNotesDesc
}

func (c logCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.l.Stats()
	ch <- prometheus.MustNewConstMetric(logRecordsDesc, prometheus.CounterValue, float64(s.Records))
	ch <- prometheus.MustNewConstMetric(logSyncsDesc, prometheus.CounterValue, float64(s.Syncs))
	ch <- prometheus.MustNewConstMetric(logNotesDesc, prometheus.CounterValue, float64(s.Written), "written")
	ch <- prometheus.MustNewConstMetric(logNotesDesc, prometheus.CounterValue, float64(s.Skipped), "skipped")
}
