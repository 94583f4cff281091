#ifndef VERTEBRA_CEXPAT_SHIM_H
#define VERTEBRA_CEXPAT_SHIM_H
#include <expat.h>

/// expat >= 2.6 defers re-parsing of large tokens by default, which delays callbacks on a
/// live stream. Turn that off where the call exists; older versions never defer.
static inline void vertebra_expat_disable_reparse_deferral(XML_Parser parser) {
#if XML_MAJOR_VERSION > 2 || (XML_MAJOR_VERSION == 2 && XML_MINOR_VERSION >= 6)
    XML_SetReparseDeferralEnabled(parser, XML_FALSE);
#else
    (void)parser;
#endif
}

/// Byte offset of the current event in the input, as a plain 64-bit integer.
static inline long long vertebra_expat_byte_index(XML_Parser parser) {
    return (long long)XML_GetCurrentByteIndex(parser);
}
#endif
