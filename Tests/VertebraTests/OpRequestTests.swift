import Natter
import Testing
import VertebraXML

@testable import Vertebra

/// What an agent says of an `op` request that is not one (coordinator and worker alike).
@Suite struct OpRequestTests {
    let job = "8f14e45fceea167a5a36dedd4bea2543"

    func refusal(_ xml: String) throws -> String? {
        let message = try ProtocolMessage(try XElement(xml: xml))
        do {
            _ = try message.opRequest()
            return nil
        } catch {
            return error.text
        }
    }

    @Test func anOpNamesItsOperationAndCarriesAJobTokenA() throws {
        let ns = XMLNamespace.vertebraAPI
        #expect(try refusal("<op xmlns='\(ns)' type='/test/echo' token='\(job)'/>") == nil)
        #expect(try refusal("<op xmlns='\(ns)' token='\(job)'/>") == "an op must name its operation in its type attribute")
        #expect(try refusal("<op xmlns='\(ns)' type='/test/echo' token='\(job):b1'/>") == "an op must carry a job token A (without :B)")
        #expect(try refusal("<ack xmlns='\(ns)' token='\(job):b1'/>") == "an op must carry a job token A (without :B)")
    }
}
