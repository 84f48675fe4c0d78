// With index.py beside it, handler index.handler needs a runtime to say which.
exports.handler = async (event) => {
  const request = event.Records[0].cf.request;
  request.headers["x-language"] = [{ key: "X-Language", value: "node" }];
  return request;
};
