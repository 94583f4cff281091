import Foundation
import Hummingbird
import Vertebra
import VertebraJournal

/// The cancel and retry buttons: sign-in with an XMPP account, a session cookie (HttpOnly,
/// SameSite=Strict), a CSRF token in every form and an Origin check on every POST. The action
/// itself is done as the signed-in account, so the coordinator's ACL decides.
extension WebView {
    func addActions(to router: Router<BasicRequestContext>, pages: Pages, actions: WebActions, sessions: WebSessions) {
        router.get("/signin") { _, _ in pages.signIn(error: nil) }
        router.post("/signin") { request, _ in
            var request = request
            guard Self.isSameOrigin(request) else { return Pages.forbidden("cross-site sign-in refused") }
            let form = try await Self.form(&request)
            let typed = (form["account"] ?? "").trimmingCharacters(in: .whitespaces)
            let account = typed.contains("@") ? typed : "\(typed)@\(actions.domain)"
            guard !typed.isEmpty, let password = form["password"], !password.isEmpty else {
                return pages.signIn(error: "Give an account and its password.", status: .badRequest)
            }
            let jobOperator: any JobOperator
            do {
                jobOperator = try await actions.signIn(account, password)
            } catch {
                try? await Task.sleep(for: .seconds(1))  // slows guessing down
                return pages.signIn(error: "The XMPP server refused \(account): \(error)", status: .unauthorized)
            }
            guard let session = await sessions.create(account: account, jobOperator: jobOperator) else {
                await jobOperator.stop()
                return pages.signIn(error: "No random bytes for a session", status: .internalServerError)
            }
            var response = Response(status: .seeOther, headers: [.location: "/jobs"])
            response.setCookie(Cookie(name: WebSessions.cookie, value: session.id, path: "/", httpOnly: true, sameSite: .strict))
            return response
        }
        router.post("/signout") { request, _ in
            var request = request
            let id = request.cookies[WebSessions.cookie]?.value
            let form = try await Self.form(&request)
            if let session = await sessions.session(id), CSRF.matches(form["csrf"], session.csrf), Self.isSameOrigin(request) {
                await sessions.end(id)
            }
            var response = Response(status: .seeOther, headers: [.location: "/jobs"])
            response.setCookie(Cookie(name: WebSessions.cookie, value: "", maxAge: 0, path: "/", httpOnly: true, sameSite: .strict))
            return response
        }
        for action in ["cancel", "retry"] {
            router.post("/jobs/{id}/\(action)") { request, context in
                var request = request
                let id = context.parameters.get("id") ?? ""
                guard let session = await sessions.session(request.cookies[WebSessions.cookie]?.value) else {
                    return Pages.html(HTML.page(title: "Sign in", current: "", body: "<h1>Sign in first</h1><p><a href=\"/signin\">Sign in</a> to \(action) jobs.</p>"), status: .unauthorized)
                }
                let form = try await Self.form(&request)
                guard Self.isSameOrigin(request) else {
                    return Pages.forbidden("cross-site \(action) refused: the form must come from this view's own pages")
                }
                guard CSRF.matches(form["csrf"], session.csrf) else {
                    return Pages.forbidden("the form's token does not match this session; reload the page and try again")
                }
                do {
                    let result = action == "cancel" ? try await session.jobOperator.cancelJob(id) : try await session.jobOperator.retryJob(id)
                    return Response(status: .seeOther, headers: [.location: "/jobs/\(result.job)" + HTML.query([("note", action == "cancel" ? "cancelling" : "retried")])])
                } catch {
                    // The job's page with the refusal, answered at once (not a redirect: its text
                    // would travel in the link).
                    let message = (error as? VertebraError)?.message ?? "\(error)"
                    var page = try await pages.job(id, viewer: Pages.Viewer(account: session.account, csrf: session.csrf), note: "Refused: \(message)")
                    if page.status == .ok { page.status = .conflict }
                    return page
                }
            }
        }
    }

    /// A POST's form fields (application/x-www-form-urlencoded, at most 16 KiB).
    static func form(_ request: inout Request) async throws -> [String: String] {
        let body = try await request.collectBody(upTo: 16_384)
        let text = String(buffer: body).replacingOccurrences(of: "+", with: "%20")
        var fields: [String: String] = [:]
        for item in URLComponents(string: "?" + text)?.queryItems ?? [] where fields[item.name] == nil {
            fields[item.name] = item.value ?? ""
        }
        return fields
    }

    /// A browser's POST from another site carries its Origin: refused unless it is this host.
    static func isSameOrigin(_ request: Request) -> Bool {
        guard let origin = request.headers[.origin] else { return true }
        guard let host = request.head.authority else { return false }
        return origin == "http://\(host)" || origin == "https://\(host)"
    }
}
