// ESM in a .js file: the package.json beside it says "type": "module".
import { greeting } from './greet.js';

export async function handler(event) {
    return { status: '200', body: greeting() };
}
