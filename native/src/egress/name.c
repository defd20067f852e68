/* The one spelling of a host name the relay compares (parse.h): shared by the TLS and HTTP
 * parsers. Pure; runs in sbx-egress (host namespaces, root) on bytes a sandboxed client chose. */
#include "parse.h"

int eg_name(const uint8_t *s, size_t n, char out[256])
{
	if (n > 0 && s[n - 1] == '.')
		n--;                            /* "a.test." and "a.test" are one name */
	if (n == 0 || n > 253)
		return 0;
	size_t label = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = s[i];
		if (c >= 'A' && c <= 'Z')
			c = (uint8_t)(c - 'A' + 'a');
		if (c == '.') {
			if (label == 0)
				return 0;               /* an empty label: "..", or a leading dot */
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
		out[i] = (char)c;
	}
	out[n] = '\0';
	return 1;
}
