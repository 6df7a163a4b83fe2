import CoreMetrics
import Prometheus
import SpeechCore
import SpeechService

/// The server's Prometheus metrics, served at `GET /metrics`.
///
/// HTTP metrics (requests by route and status, latency histogram, active requests) come from
/// Hummingbird's `MetricsMiddleware` through swift-metrics, renamed here to `lark_http_*`; the
/// speech metrics (time to first audio, audio produced, synthesis in flight and queued) are
/// recorded by the routes and the synthesis scheduler directly on the registry.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let synthesisInFlight: Prometheus.Gauge
    let synthesisQueueDepth: Prometheus.Gauge
    let rejected: Prometheus.Counter

    /// Seconds, for latencies from a short sentence to a long text.
    static let latencyBuckets: [Duration] = [
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(120),
    ]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        synthesisInFlight = registry.makeGauge(
            descriptor: Self.name("synthesis_in_flight", unit: "", help: "Model runs (or espeak-ng sentences) in progress."))
        synthesisQueueDepth = registry.makeGauge(
            descriptor: Self.name("synthesis_queue_depth", unit: "", help: "Live requests' model runs waiting for a synthesis place."))
        rejected = registry.makeCounter(
            descriptor: Self.name("synthesis_rejected", unit: "total", help: "Requests refused with 503 because too many were under way."))
    }

    /// The synthesis scheduler, its load published as `synthesis_in_flight` and `synthesis_queue_depth`,
    /// and its limit as `synthesis_capacity` (what a load test needs to reach the 503s).
    public func makeScheduler(workers: Int, maxQueue: Int) -> SynthesisScheduler {
        let scheduler = SynthesisScheduler(workers: workers, maxQueue: maxQueue) { [synthesisInFlight, synthesisQueueDepth] running, queued in
            synthesisInFlight.set(Int64(running))
            synthesisQueueDepth.set(Int64(queued))
        }
        registry.makeGauge(
            descriptor: Self.name("synthesis_capacity", unit: "", help: "Live requests admitted at once (synthesis workers plus queue); more are answered 503.")
        ).set(Int64(scheduler.workers + scheduler.maxQueue))
        return scheduler
    }

    /// Time from the request's arrival to its first audio being ready to send.
    func timeToFirstAudio(route: String) -> DurationHistogram {
        registry.makeDurationHistogram(
            descriptor: Self.name("time_to_first_audio", unit: "seconds", help: "Time from request to the first audio ready to send."),
            labels: [("route", route)], buckets: Self.latencyBuckets)
    }

    /// One voice's audio-seconds and sentence counters, looked up once per request.
    struct VoiceCounters: Sendable {
        let audioSeconds: Prometheus.Counter
        let sentences: Prometheus.Counter

        func count(_ chunk: AudioChunk) {
            audioSeconds.increment(by: Double(chunk.samples.count) / Double(max(1, chunk.sampleRate)))
            sentences.increment()
        }
    }

    func voiceCounters(_ voice: String) -> VoiceCounters {
        VoiceCounters(
            audioSeconds: registry.makeCounter(
                descriptor: Self.name("audio_produced", unit: "seconds_total", help: "Seconds of audio synthesized."),
                labels: [("voice", voice)]),
            sentences: registry.makeCounter(
                descriptor: Self.name("sentences_synthesized", unit: "total", help: "Sentences synthesized."),
                labels: [("voice", voice)]))
    }

    // The same counters for front doors outside this module (the Wyoming server).

    /// Records a request's time to its first audio under `route` (`wyoming` for the Wyoming server).
    public func recordTimeToFirstAudio(route: String, _ duration: Duration) {
        timeToFirstAudio(route: route).record(duration)
    }

    /// Counts one sentence's audio for `voice`.
    public func countAudio(_ chunk: AudioChunk, voice: String) {
        voiceCounters(voice).count(chunk)
    }

    /// Counts a request refused because the scheduler was full.
    public func countRejected() {
        rejected.increment()
    }

    /// The Prometheus text exposition of every metric.
    func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }

    /// Routes swift-metrics (Hummingbird's middleware) into this registry, with Prometheus names.
    /// Process-wide: call once, before the application is built.
    public func bootstrapSwiftMetrics() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = Self.latencyBuckets
        factory.nameAndLabelSanitizer = { name, labels in
            let renamed = [
                "hb.requests": "lark_http_requests_total",
                "hb.request.errors": "lark_http_request_errors_total",
                "http.server.request.duration": "lark_http_request_duration_seconds",
                "http.server.active_requests": "lark_http_active_requests",
            ][name] ?? name
            let labelNames = ["http.route": "route", "http.request.method": "method", "http.response.status_code": "status", "error.type": "status"]
            return (renamed, labels.map { (labelNames[$0.0] ?? $0.0, $0.1) })
        }
        MetricsSystem.bootstrap(factory)
    }

    private static func name(_ metric: String, unit: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "lark", metricName: metric, unitName: unit, helpText: help)
    }
}
