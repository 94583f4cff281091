import Testing
import VertebraAgent
import VertebraXML

/// `name=type:value` on the command line, as `vertebra dispatch` and batch files read it.
@Suite struct TypedArgumentsTests {
    @Test(arguments: [
        ("n=i4:3", "i4", "3"), ("n=int:3", "int", "3"), ("n=integer:9000000000", "integer", "9000000000"),
        ("n=i8:-2", "i8", "-2"), ("on=boolean:true", "boolean", "1"), ("path=res:/a/b", "res", "/a/b"),
        ("url=http://example.org/x", "string", "http://example.org/x"), ("note=todo:buy milk", "string", "todo:buy milk"),
        ("raw=string:bool:1", "string", "bool:1"), ("text=a=b", "string", "a=b"),
    ])
    func eachTypeBecomesItsElement(argument: String, type: String, text: String) throws {
        let element = try TypedArguments.parse(argument)
        #expect(element.name == type)
        #expect(element.text == text)
    }

    @Test(arguments: [
        ("n=int:3000000000", "'3000000000' is not a valid int"),
        ("n=integer:x", "'x' is not a valid integer"),
        ("on=bool:1", "'bool:' is not a type (did you mean boolean:?)"),
        ("x=float:1.5", "did you mean double:?"),
        ("n=long:5", "did you mean i8:?"),
        ("=3", "is not name=type:value"),
    ])
    func aMistypedArgumentIsAnErrorNamingIt(argument: String, message: String) {
        #expect {
            try TypedArguments.parse(argument)
        } throws: { error in
            "\(error)".contains(message)
        }
    }
}
