// A Node.js function named as Lambda names it: handler index.handler, code: node_fn.
import { NAME } from "./helper.mjs";

export const handler = async (event, context) => {
  const request = event.Records[0].cf.request;
  const seen = {
    "x-helper": NAME,
    "x-handler": process.env._HANDLER,
    "x-task-root": process.env.LAMBDA_TASK_ROOT,
    "x-cwd": process.cwd(),
    "x-function-name": context.functionName,
  };
  for (const [name, value] of Object.entries(seen)) {
    request.headers[name] = [{ key: name, value }];
  }
  return request;
};
