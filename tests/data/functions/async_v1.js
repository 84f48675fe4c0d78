// async/await is runtime 2.0 only.
async function handler(event) {
    return event.request;
}
