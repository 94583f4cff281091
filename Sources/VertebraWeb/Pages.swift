import Foundation
import Hummingbird
import Vertebra
import VertebraJournal
import VertebraXML

/// The pages of the web view.
struct Pages: Sendable {
    let reader: JournalReader
    let roster: (@Sendable () async throws -> [WorkerStatus])?
    /// Whether the cancel and retry buttons exist (a coordinator to sign in to is known).
    let actionsEnabled: Bool

    /// Who is signed in, with the session's CSRF token (nil: nobody).
    struct Viewer: Sendable {
        let account: String
        let csrf: String
    }

    /// The header's sign-in status.
    func accountLine(_ viewer: Viewer?) -> String {
        guard actionsEnabled else { return "" }
        guard let viewer else { return "<a href=\"/signin\">sign in</a>" }
        return "\(HTML.escape(viewer.account)) <form method=\"post\" action=\"/signout\"><input type=\"hidden\" name=\"csrf\" value=\"\(viewer.csrf)\"><button>sign out</button></form>"
    }

    func signIn(error: String?, status: HTTPResponse.Status = .ok) -> Response {
        var body = "<h1>Sign in</h1><p>With an account of the XMPP server: cancel and retry are done as that account, so the coordinator's ACL decides what it may do.</p>"
        if let error { body += "<p class=\"note\" id=\"error\">\(HTML.escape(error))</p>" }
        body += """
            <form method="post" action="/signin"><p><label>Account <input name="account" autocomplete="username" placeholder="alice or alice@example.org"></label></p>\
            <p><label>Password <input name="password" type="password" autocomplete="current-password"></label></p><button type="submit">Sign in</button></form>
            """
        return Self.html(HTML.page(title: "Sign in", current: "", body: body), status: status)
    }

    static func forbidden(_ reason: String) -> Response {
        html(HTML.page(title: "Refused", current: "", body: "<h1>Refused</h1><p>\(HTML.escape(reason))</p>"), status: .forbidden)
    }

    // MARK: Jobs

    func jobs(_ query: JobQuery, viewer: Viewer? = nil) async throws -> Response {
        let now = Date()
        let found = try await reader.jobs(matching: query.filter(now: now, limit: JobQuery.pageSize + 1))
        let shown = found.prefix(JobQuery.pageSize)
        var body = "<h1>Jobs</h1>" + filters(query)
        if !query.problems.isEmpty {
            body += "<p class=\"problems\">Ignored: \(HTML.escape(query.problems.joined(separator: "; ")))</p>"
        }
        body += """
            <table id="jobs"><thead><tr><th>ID</th><th>Operation</th><th>Worker</th><th>State</th><th>Attempts</th>\
            <th>Created</th><th>Duration</th><th>Error</th></tr></thead><tbody>
            """
        body += shown.map(Self.row).joined()
        body += "</tbody></table>"
        if shown.isEmpty { body += "<p id=\"empty\" class=\"muted\">No jobs match.</p>" }
        var pager: [String] = []
        if query.page > 1 { pager.append("<a rel=\"prev\" href=\"/jobs\(HTML.query(query.parameters(page: query.page - 1)))\">newer</a>") }
        if found.count > JobQuery.pageSize { pager.append("<a rel=\"next\" href=\"/jobs\(HTML.query(query.parameters(page: query.page + 1)))\">older</a>") }
        body += "<p>Page \(query.page) \(pager.joined(separator: " · ")) <span id=\"live\" class=\"muted\">connecting…</span></p>"
        let live = HTML.query(query.parameters() + [("after", String(Int64(now.timeIntervalSince1970 * 1000) - 1000))])
        return Self.html(HTML.page(
            title: "Jobs", current: "/jobs", body: body, script: Self.liveScriptTag(events: "/events" + live, prepend: query.page == 1),
            account: accountLine(viewer)))
    }

    /// The jobs as `vertebra jobs --json` prints them; a filter it cannot read is a 400 that
    /// says why (`{"error": ...}`), not silently dropped.
    func jobsJSON(_ query: JobQuery) async throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard query.problems.isEmpty else {
            let data = try encoder.encode(["error": query.problems.joined(separator: "; ")])
            return Response(status: .badRequest, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        let jobs = try await reader.jobs(matching: query.filter())
        let data = try encoder.encode(jobs.map(JobJSON.init))
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    private func filters(_ query: JobQuery) -> String {
        let states = ["", "pending", "dispatched", "running", "done", "failed", "cancelled"].map { state in
            let selected = query.states.map(\.rawValue).joined(separator: ",") == state ? " selected" : ""
            return "<option value=\"\(state)\"\(selected)>\(state.isEmpty ? "any state" : state)</option>"
        }.joined()
        func input(_ name: String, _ value: String?, _ placeholder: String) -> String {
            "<input name=\"\(name)\" value=\"\(HTML.escape(value ?? ""))\" placeholder=\"\(placeholder)\">"
        }
        return """
            <form class="filters" method="get" action="/jobs"><select name="state">\(states)</select>\
            \(input("op", query.operation, "/operation or /prefix/*"))\(input("worker", query.worker, "worker JID"))\
            \(input("q", query.text, "text in arguments or errors"))\(input("since", query.since, "since: 1h, 7d, 2026-11-30T09:00"))\
            \(input("until", query.until, "until: a time"))<button type="submit">Filter</button> <a href="/jobs">clear</a></form>
            """
    }

    static func row(_ job: Job) -> String {
        let id = HTML.escape(job.token)
        return """
            <tr id="job-\(id)" data-state="\(job.state.rawValue)"><td class="id"><a href="/jobs/\(id)">\(id.prefix(12))</a></td>\
            <td>\(HTML.escape(job.operation))</td><td>\(HTML.escape(job.worker ?? "-"))</td>\
            <td><span class="state \(job.state.rawValue)">\(job.state.rawValue)</span></td><td>\(job.attempts)</td>\
            <td>\(HTML.time(job.created))</td><td>\(HTML.duration(job.duration))</td><td>\(HTML.escape(job.error ?? ""))</td></tr>
            """
    }

    // MARK: One job

    /// The notes a job page shows after an action, by the name its redirect carries.
    static let notes = ["cancelling": "Cancelling: its workers were told.", "retried": "Retried as this new job."]

    func job(_ id: String, viewer: Viewer? = nil, note: String? = nil) async throws -> Response {
        let timeline: JobTimeline
        do {
            timeline = try await reader.timeline(ofJob: id)
        } catch let error as JournalError where [.unknownJob, .ambiguousJob, .invalidArgument].contains(error.code) {
            let title = error.code == .ambiguousJob ? "Which job?" : "No such job"
            let body = "<h1>\(title)</h1><p>\(HTML.escape(error.message))</p><p><a href=\"/jobs\">All jobs</a></p>"
            return Self.html(HTML.page(title: title, current: "/jobs", body: body), status: .notFound)
        }
        let job = timeline.job
        func field(_ name: String, _ value: String?) -> String {
            "<tr><th>\(name)</th><td>\(value ?? "-")</td></tr>"
        }
        func link(_ token: String) -> String { "<a href=\"/jobs/\(HTML.escape(token))\">\(HTML.escape(token))</a>" }
        var body = "<h1>Job <code>\(HTML.escape(job.token))</code></h1>"
        if let note { body += "<p class=\"note\" id=\"note\">\(HTML.escape(note))</p>" }
        body += actionButtons(job, viewer: viewer) + "<table class=\"fields\">"
        body += field("Operation", HTML.escape(job.operation))
        body += field("State", "<span class=\"state \(job.state.rawValue)\">\(job.state.rawValue)</span> (\(job.attempts) attempt\(job.attempts == 1 ? "" : "s"))")
        body += field("Scope", job.scope.rawValue) + field("Submitter", job.submitter.map(HTML.escape)) + field("Worker", job.worker.map(HTML.escape))
        body += field("Created", HTML.time(job.created)) + field("Finished", job.finished.map(HTML.time))
        body += field("Duration", HTML.duration(job.duration)) + field("Deadline", job.deadline.map(HTML.time))
        if let notBefore = job.notBefore { body += field("Not before", HTML.time(notBefore)) }
        if let key = job.key { body += field("Key", HTML.escape(key)) }
        if let original = job.retryOf { body += field("Retry of", link(original)) }
        if !timeline.retries.isEmpty { body += field("Retried as", timeline.retries.map(link).joined(separator: ", ")) }
        body += "</table><h2>Arguments</h2>" + HTML.values(HTML.arguments(ofOp: job.arguments))
        if job.result != nil { body += "<h2>Result</h2>" + HTML.values(HTML.resultValues(job.result)) }
        if let error = job.error { body += "<h2>Error</h2><pre class=\"error\">\(HTML.escape(error))</pre>" }
        body += "<h2>Attempts</h2><table><tr><th>#</th><th>Token</th><th>Role</th><th>Peer</th><th>State</th></tr>"
        body += timeline.conversations.map { conversation in
            "<tr><td>\(conversation.id)</td><td class=\"id\">\(HTML.escape(conversation.token ?? "-"))</td><td>\(conversation.role.rawValue)</td>"
                + "<td>\(HTML.escape(conversation.peer))</td><td>\(conversation.state.rawValue)\(conversation.isCurrent ? "" : " (superseded)")</td></tr>"
        }.joined() + "</table>"
        body += "<h2>Timeline</h2><table id=\"timeline\"><tr><th>Sent</th><th>#</th><th></th><th>Peer</th><th>Kind</th><th>Answered</th><th>Stanza</th></tr>"
        body += timeline.stanzas.map { stanza in
            let answered = stanza.acked.map { "+" + HTML.duration($0.timeIntervalSince(stanza.sent)) } ?? "<strong>unanswered</strong>"
            return "<tr><td>\(HTML.time(stanza.sent))</td><td>\(stanza.conversation)/\(stanza.sequence)</td><td>\(stanza.direction == .inbound ? "←" : "→")</td>"
                + "<td>\(HTML.escape(stanza.peer))</td><td>\(stanza.kind.rawValue)</td><td>\(answered)</td>"
                + "<td><details><summary>id \(HTML.escape(stanza.iqID))</summary><pre>\(HTML.escape(stanza.body))</pre></details></td></tr>"
        }.joined() + "</table>"
        return Self.html(HTML.page(title: "Job \(job.token.prefix(12))", current: "/jobs", body: body, account: accountLine(viewer)))
    }

    /// Cancel (an unfinished job) and retry (a failed or cancelled one), for a signed-in viewer.
    private func actionButtons(_ job: Job, viewer: Viewer?) -> String {
        guard actionsEnabled else { return "" }
        guard let viewer else { return "<p class=\"actions muted\"><a href=\"/signin\">Sign in</a> to cancel or retry.</p>" }
        let id = HTML.escape(job.token)
        func button(_ action: String, _ label: String) -> String {
            "<form method=\"post\" action=\"/jobs/\(id)/\(action)\"><input type=\"hidden\" name=\"csrf\" value=\"\(viewer.csrf)\"><button id=\"\(action)\" type=\"submit\">\(label)</button></form>"
        }
        var buttons = ""
        if !job.state.isTerminal { buttons += button("cancel", "Cancel job") }
        if job.state == .failed || job.state == .cancelled { buttons += button("retry", "Retry as a new job") }
        return buttons.isEmpty ? "" : "<p class=\"actions\">\(buttons)</p>"
    }

    // MARK: Workers

    func workers(viewer: Viewer? = nil) async -> Response {
        guard let roster else {
            let body = """
                <h1>Workers</h1><p id="not-connected">Not connected to a coordinator: this view reads a journal file only. \
                Run <code>vertebra coordinator --web 127.0.0.1:8080</code>, or <code>vertebra web</code> with <code>--jid</code> \
                and a password of an account the coordinator's ACL lets list workers, to see the live roster.</p>
                """
            return Self.html(HTML.page(title: "Workers", current: "/workers", body: body, account: accountLine(viewer)))
        }
        var body = "<h1>Workers</h1>"
        do {
            let workers = try await roster()
            body += "<table id=\"workers\"><tr><th>JID</th><th>Load</th><th>Advertised</th><th>Expires</th><th>Operations</th></tr>"
            body += workers.map { worker in
                "<tr><td>\(HTML.escape(worker.jid))</td><td>\(worker.outstanding)/\(worker.capacity)</td><td>\(worker.advertisedSecondsAgo) s ago</td>"
                    + "<td>in \(worker.expiresInSeconds) s</td><td>\(HTML.escape(worker.operations.map(\.path).joined(separator: " ")))</td></tr>"
            }.joined() + "</table>"
            if workers.isEmpty { body += "<p class=\"muted\">No live workers.</p>" }
        } catch {
            body += "<p class=\"problems\">The coordinator did not answer: \(HTML.escape("\(error)"))</p>"
        }
        return Self.html(HTML.page(title: "Workers", current: "/workers", body: body, account: accountLine(viewer)))
    }

    // MARK: Charts

    func charts(now: Date, viewer: Viewer? = nil) async throws -> Response {
        var filter = JobFilter(limit: 100_000)
        filter.changedSince = now.addingTimeInterval(-3600)
        let finished = try await reader.jobs(matching: filter).filter { ($0.finished ?? .distantPast) >= now.addingTimeInterval(-3600) }
        var body = "<h1>The last hour</h1>"
        let operations = Dictionary(grouping: finished, by: \.operation).sorted { $0.value.count > $1.value.count }.prefix(8)
        if operations.isEmpty { body += "<p class=\"muted\">No job finished in the last hour.</p>" }
        for (operation, jobs) in operations {
            let series = Charts.perMinute(jobs, now: now)
            body += "<h2>\(HTML.escape(operation)) <span class=\"muted\">\(jobs.count) finished</span></h2>"
            body += Charts.bars(series.map { Double($0.count) / 60 }, title: "jobs finished per second (each minute's average)", unit: "/s")
            body += Charts.lines([("p50", series.map(\.p50)), ("p99", series.map(\.p99))], title: "duration per minute (ms)")
        }
        return Self.html(HTML.page(title: "Charts", current: "/charts", body: body, account: accountLine(viewer)))
    }

    static func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "text/html; charset=utf-8", .contentSecurityPolicy: "default-src 'self'; script-src 'self'; style-src 'unsafe-inline'"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// Keeps the table current from `/events`: each changed job updates its row, a new one is
    /// added on top (first page only). Cells are filled with textContent: nothing is parsed as HTML.
    /// The tag that loads ``liveScript`` for `events` (no inline script: the CSP allows none).
    static func liveScriptTag(events: String, prepend: Bool) -> String {
        "<script src=\"/live.js\" data-events=\"\(HTML.escape(events))\" data-prepend=\"\(prepend)\"></script>"
    }

    /// Served as `/live.js`; reads its stream and mode from its tag's data attributes.
    static let liveScript = """
        window.vertebraLive={connected:false,updates:0};
        (function(){const me=document.currentScript;const prepend=me.dataset.prepend==='true';
        const live=document.getElementById('live');const source=new EventSource(me.dataset.events);
        source.onopen=function(){window.vertebraLive.connected=true;live.textContent='live';};
        source.onerror=function(){live.textContent='reconnecting…';};
        source.addEventListener('job',function(event){const job=JSON.parse(event.data);window.vertebraLive.updates++;
        let row=document.getElementById('job-'+job.id);const fresh=!row;
        if(fresh){if(!prepend){return;}row=document.createElement('tr');row.id='job-'+job.id;row.className='fresh';
        for(let i=0;i<8;i++){row.appendChild(document.createElement('td'));}
        const link=document.createElement('a');link.href='/jobs/'+job.id;link.textContent=job.id.slice(0,12);row.cells[0].className='id';row.cells[0].appendChild(link);
        document.querySelector('#jobs tbody').prepend(row);const empty=document.getElementById('empty');if(empty){empty.remove();}}
        row.dataset.state=job.state;row.cells[1].textContent=job.op;row.cells[2].textContent=job.worker||'-';
        const badge=document.createElement('span');badge.className='state '+job.state;badge.textContent=job.state;row.cells[3].replaceChildren(badge);
        row.cells[4].textContent=job.attempts;row.cells[5].textContent=job.created;row.cells[6].textContent=job.duration_text;row.cells[7].textContent=job.error||'';});})();
        """
}

/// A job as the JSON routes and the live updates give it.
struct JobSummary: Encodable {
    let id, op, state, created, updated: String
    let worker, finished, error, retryOf, key: String?
    let attempts: Int
    let duration: Double?
    let durationText: String

    init(_ job: Job) {
        id = job.token
        op = job.operation
        state = job.state.rawValue
        created = HTML.time(job.created)
        updated = HTML.time(job.updated)
        worker = job.worker
        finished = job.finished.map(HTML.time)
        error = job.error
        retryOf = job.retryOf
        key = job.key
        attempts = job.attempts
        duration = job.duration
        durationText = HTML.duration(job.duration)
    }

    enum CodingKeys: String, CodingKey {
        case id, op, state, created, updated, worker, finished, error, key, attempts, duration
        case retryOf = "retry_of", durationText = "duration_text"
    }
}
