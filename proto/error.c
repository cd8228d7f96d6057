/*
 * One sentence for every code a loket function can return: the project's
 * own LOKET_E_* codes from error.h and negative errno values. Logs, CLI
 * messages and control replies all print codes through loket_strerror, so a
 * code means the same words everywhere.
 */
#include "proto/error.h"

#include <string.h>

const char *loket_strerror(int code)
{
	switch (code) {
	case 0:
		return "Success";
	case LOKET_E_TRUNCATED:
		return "Input ends inside a value";
	case LOKET_E_TRAILING:
		return "Bytes are left over after the value";
	case LOKET_E_TOO_BIG:
		return "A size or count is beyond its limit";
	case LOKET_E_TOO_DEEP:
		return "Values are nested beyond the limit";
	case LOKET_E_VERSION:
		return "Unknown format version";
	case LOKET_E_MALFORMED:
		return "Wrong type or shape of data";
	case LOKET_E_NOT_CANONICAL:
		return "Encoding is not the canonical one";
	case LOKET_E_DUPLICATE_KEY:
		return "A map names the same key twice";
	case LOKET_E_BAD_SIGNATURE:
		return "Signature does not verify";
	case LOKET_E_BAD_SEQ:
		return "Sequence number is zero or leaves a gap";
	case LOKET_E_BAD_PREV:
		return "Previous hash does not link to the chain";
	case LOKET_E_NOT_MEMBER:
		return "Origin or key is not in the roster";
	case LOKET_E_FORK:
		return "A second changeset exists for the same origin and sequence number";
	case LOKET_E_FEDERATION:
		return "Changeset belongs to another federation";
	case LOKET_E_CONFIG:
		return "Configuration is invalid";
	case LOKET_E_KEY_PERMS:
		return "Key file is readable by others";
	case LOKET_E_NOT_FOUND:
		return "No such entity, origin or file";
	case LOKET_E_EXISTS:
		return "Refusing to overwrite what exists";
	case LOKET_E_STORE:
		return "The store reported an error";
	case LOKET_E_SCHEMA:
		return "Store schema is newer than this program or unknown";
	case LOKET_E_BAD_REQUEST:
		return "Control request is malformed";
	case LOKET_E_UNAVAILABLE:
		return "Daemon is not reachable";
	case LOKET_E_VERIFY:
		return "Verification found problems";
	case LOKET_E_LOCKED:
		return "The data directory is in use by another process";
	case LOKET_E_DAMAGED:
		return "The store is damaged";
	default:
		break;
	}
	/* Codes appended to error.h later land here until they get a sentence. */
	if (code >= LOKET_E_FIRST && code < LOKET_E_LAST)
		return "Unknown loket error";
	if (code < 0 && code > LOKET_E_FIRST)
		return strerror(-code);
	return "Unknown error code";
}
