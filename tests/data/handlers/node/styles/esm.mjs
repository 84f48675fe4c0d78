// An ES module exporting an async handler.
import { outcome, forever } from './outcome.cjs';

export const handler = async (event) => {
    const { error, result, hang } = outcome(event, 'esm');
    if (hang) await new Promise(forever);
    if (error) throw error;
    return result;
};
