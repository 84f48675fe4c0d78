export const greeting = () => 'esm .js under type module';
