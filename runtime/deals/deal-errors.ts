/** The errors the deal API answers with (matched by `name`: the HTTP server maps DeployError to 400, UnknownDealError to 404). */

/** A deploy the node refuses before anything is sent (HTTP 400, CLI exit 2). */
export class DeployError extends Error {
  override name = 'DeployError';
}

/** No job or allocation with that id here. */
export class UnknownDealError extends Error {
  override name = 'UnknownDealError';
}
