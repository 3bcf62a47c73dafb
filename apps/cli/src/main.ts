console.log('baka');
