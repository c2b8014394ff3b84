// Errors of the API layer. Invalid Origins are not errors but results
// (validate.ts returns one message per problem); what throws here is a schema
// the CRD generator cannot express, a bug caught at build time.
import { OriginguardError } from '../errors.ts';

export const CRD_SCHEMA = 'OG_CRD_SCHEMA';

/** A TypeBox schema with no CRD (structural OpenAPI) equivalent. */
export class CrdSchemaError extends OriginguardError {
  readonly code = CRD_SCHEMA;
}
