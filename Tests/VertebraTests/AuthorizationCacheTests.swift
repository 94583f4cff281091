import Testing
@testable import Vertebra

@Suite struct AuthorizationCacheTests {
    let start = ContinuousClock.now

    @Test func anAnswerIsRememberedForItsLifetimeOnly() {
        var cache = AuthorizationCache(capacity: 4, lifetime: .seconds(60))
        cache.remember("alice|/op", allowed: true, now: start)
        cache.remember("mallory|/op", allowed: false, now: start)
        #expect(cache.answer("alice|/op", now: start + .seconds(59)) == true)
        #expect(cache.answer("mallory|/op", now: start + .seconds(59)) == false)
        #expect(cache.answer("alice|/op", now: start + .seconds(60)) == nil)
        #expect(cache.answer("bob|/op", now: start) == nil)
    }

    @Test func manyKeysChosenBySendersStayWithinTheCapacityOldestFirst() {
        var cache = AuthorizationCache(capacity: 3, lifetime: .seconds(60))
        for index in 0..<10_000 {
            cache.remember("peer\(index)|/op/\(index)", allowed: false, now: start)
            #expect(cache.count <= 3)
        }
        #expect(cache.answer("peer9999|/op/9999", now: start) == false)
        #expect(cache.answer("peer9997|/op/9997", now: start) == false)
        #expect(cache.answer("peer9996|/op/9996", now: start) == nil)
    }

    @Test func rememberingAKeyAgainRefreshesItWithoutGrowing() {
        var cache = AuthorizationCache(capacity: 2, lifetime: .seconds(10))
        cache.remember("a", allowed: false, now: start)
        cache.remember("a", allowed: true, now: start + .seconds(5))
        #expect(cache.count == 1)
        #expect(cache.answer("a", now: start + .seconds(12)) == true)
    }
}
