// An async handler awaiting a promise nothing will settle: the event loop empties.
exports.handler = async () => {
    await new Promise(() => {});
};
