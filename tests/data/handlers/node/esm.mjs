// An ES module: adds a header at viewer-response.
export const handler = async (event) => {
    const response = event.Records[0].cf.response;
    response.headers['x-node-esm'] = [{ key: 'X-Node-Esm', value: 'yes' }];
    return response;
};
