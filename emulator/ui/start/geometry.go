package start

// gridTop is the space above the first row of tiles, in logical units.
const gridTop = 20
