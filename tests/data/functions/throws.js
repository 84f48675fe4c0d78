function handler(event) {
    throw new Error('boom');
}
