// Raises: the call is a function error.
exports.handler = async () => {
    throw new TypeError('node handler failed on purpose');
};
